//! The incident category catalogue.
//!
//! Built in from DOMAIN.md (version 1) and versioned, so that a catalogue sent
//! by the district server can replace it: the core's `Store::replace_catalogue`
//! keeps whichever has the higher version. Incidents keep their category code
//! even if a later catalogue retires it.

use serde::{Deserialize, Serialize};

/// Top-level groups, as the district reports them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CategoryGroup {
    /// 城乡治理协管类: urban and rural governance coordination.
    Governance,
    /// 安全隐患排查类: safety hazard inspection.
    SafetyHazard,
    /// 民生服务类: livelihood services.
    Livelihood,
}

/// One category an incident can be reported under.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Category {
    /// Stable code (`gas_no_alarm`).
    pub code: String,
    /// Group.
    pub group: CategoryGroup,
    /// Name shown to workers.
    pub name_zh: String,
    /// English name, for documentation and logs.
    pub name_en: String,
    /// Submitting requires at least one photo.
    pub requires_photo: bool,
    /// Submitting requires a GPS location.
    pub requires_location: bool,
    /// Submitting requires a description.
    pub requires_description: bool,
    /// Default time allowed for handling, in hours, set by the centre on dispatch.
    pub default_deadline_hours: u32,
}

/// A versioned list of categories.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Catalogue {
    /// Increases with every catalogue the district publishes.
    pub version: i64,
    /// The categories.
    pub categories: Vec<Category>,
}

impl Catalogue {
    /// The category with `code`.
    pub fn get(&self, code: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.code == code)
    }

    /// The catalogue this build ships with.
    pub fn builtin() -> Catalogue {
        use CategoryGroup::*;
        // (code, group, zh, en, requires photo, location, description, deadline hours)
        type Row = (
            &'static str,
            CategoryGroup,
            &'static str,
            &'static str,
            bool,
            bool,
            bool,
            u32,
        );
        let rows: [Row; 16] = [
            (
                "hornets_nest",
                Governance,
                "马蜂窝",
                "Hornets' nest",
                true,
                true,
                false,
                24,
            ),
            (
                "broken_facility",
                Governance,
                "设施损坏",
                "Broken public facility",
                true,
                true,
                true,
                72,
            ),
            (
                "illegal_parking",
                Governance,
                "违章停车",
                "Illegal parking",
                true,
                true,
                false,
                24,
            ),
            (
                "environment_sanitation",
                Governance,
                "环境卫生",
                "Litter and sanitation",
                true,
                true,
                false,
                48,
            ),
            (
                "illegal_construction",
                Governance,
                "违章搭建",
                "Illegal construction",
                true,
                true,
                true,
                168,
            ),
            (
                "neighbour_dispute",
                Governance,
                "邻里纠纷",
                "Neighbour dispute",
                false,
                false,
                true,
                72,
            ),
            (
                "gas_no_alarm",
                SafetyHazard,
                "未安装可燃气体报警器",
                "No combustible-gas alarm installed",
                true,
                false,
                false,
                168,
            ),
            (
                "gas_pipe_objects",
                SafetyHazard,
                "燃气管道悬挂物品",
                "Objects hung on gas pipes",
                true,
                false,
                false,
                72,
            ),
            (
                "gas_ventilation_lighting",
                SafetyHazard,
                "通风照明不达标",
                "Ventilation or lighting not up to standard",
                true,
                false,
                true,
                168,
            ),
            (
                "fire_exit_blocked",
                SafetyHazard,
                "消防通道堵塞",
                "Fire exit blocked",
                true,
                true,
                false,
                24,
            ),
            (
                "ebike_indoor_charging",
                SafetyHazard,
                "电动车入户充电",
                "E-bike charging indoors",
                true,
                false,
                false,
                24,
            ),
            (
                "other_safety_hazard",
                SafetyHazard,
                "其他安全隐患",
                "Other safety hazard",
                true,
                false,
                true,
                72,
            ),
            (
                "elderly_care_need",
                Livelihood,
                "老人照料需求",
                "Elderly resident needs care",
                false,
                false,
                true,
                48,
            ),
            (
                "resident_request",
                Livelihood,
                "群众诉求",
                "Resident's request",
                false,
                false,
                true,
                72,
            ),
            (
                "hardship_assistance",
                Livelihood,
                "困难帮扶",
                "Hardship assistance",
                false,
                false,
                true,
                168,
            ),
            (
                "other_governance",
                Governance,
                "其他治理事项",
                "Other governance matter",
                false,
                false,
                true,
                72,
            ),
        ];
        Catalogue {
            version: 1,
            categories: rows
                .into_iter()
                .map(|(code, group, zh, en, photo, location, description, hours)| Category {
                    code: code.to_owned(),
                    group,
                    name_zh: zh.to_owned(),
                    name_en: en.to_owned(),
                    requires_photo: photo,
                    requires_location: location,
                    requires_description: description,
                    default_deadline_hours: hours,
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_has_the_domain_categories_once_each() {
        let c = Catalogue::builtin();
        let mut codes: Vec<_> = c.categories.iter().map(|c| c.code.as_str()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), c.categories.len(), "codes are unique");
        for code in [
            "hornets_nest",
            "gas_no_alarm",
            "gas_pipe_objects",
            "gas_ventilation_lighting",
        ] {
            assert!(c.get(code).is_some(), "{code}");
        }
        for group in [
            CategoryGroup::Governance,
            CategoryGroup::SafetyHazard,
            CategoryGroup::Livelihood,
        ] {
            assert!(c.categories.iter().any(|c| c.group == group));
        }
    }
}
