//! The district's catalogue: incident categories and visit rules.
//!
//! Built in from DOMAIN.md (version 1) and versioned, so that a catalogue sent
//! by the district server can replace it: the core's `Store::replace_catalogue`
//! keeps whichever has the higher version. Incidents keep their category code
//! even if a later catalogue retires it.
//!
//! Parts added after version 1 (visit rules) are `#[serde(default)]`, and
//! codes inside a rule are strings, not enums: a phone reads a catalogue from
//! a newer server, skipping what it does not know, instead of refusing it.

use serde::{Deserialize, Serialize};

use crate::model::{CareTag, ServiceKind};

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

/// A versioned list of categories, visit rules and checklists.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Catalogue {
    /// Increases with every catalogue the district publishes.
    pub version: i64,
    /// The categories.
    pub categories: Vec<Category>,
    /// Which residents are to be visited or phoned, and how often.
    #[serde(default)]
    pub visit_rules: Vec<VisitRule>,
    /// Inspection checklists (gas safety, fire exits, ...).
    #[serde(default)]
    pub checklists: Vec<Checklist>,
    /// Fields the district adds to residents, households, places and
    /// incidents (a record's `extra`).
    #[serde(default)]
    pub field_defs: Vec<FieldDef>,
    /// Care tags the district adds to the built-in ones (`CareTag::ALL`).
    #[serde(default)]
    pub care_tags: Vec<Term>,
    /// Service kinds the district adds to the built-in ones (`ServiceKind::ALL`).
    #[serde(default)]
    pub service_kinds: Vec<Term>,
}

/// A care tag or service kind a district adds. Once published it stays:
/// a later catalogue may rename or retire it (it leaves the forms; records
/// keep it and it still counts), never remove it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Term {
    /// Stable code (a-z, 0-9 and _), not one of the built-in ones.
    pub code: String,
    /// Name shown to workers.
    pub name_zh: String,
    /// No longer offered on forms.
    #[serde(default)]
    pub retired: bool,
}

/// The problem of a list of a district's terms, if any (`what`: "care tag",
/// "service kind"; `builtin`: whether a code is a built-in one).
fn terms_problem(terms: &[Term], what: &str, builtin: impl Fn(&str) -> bool) -> Option<String> {
    let mut seen = std::collections::HashSet::new();
    for t in terms {
        if !is_code(&t.code) || builtin(&t.code) || !seen.insert(t.code.as_str()) {
            return Some(format!(
                "{what} {:?}: a new code of a-z, 0-9 and _, not a built-in one, each once",
                t.code
            ));
        }
        if t.name_zh.trim().is_empty() {
            return Some(format!("{what} {}: name_zh is required", t.code));
        }
    }
    (terms.len() > MAX_FIELDS).then(|| format!("give at most {MAX_FIELDS} {what}s"))
}

/// The kinds of record a district may add fields to.
pub const EXTENSIBLE: [crate::Entity; 4] = [
    crate::Entity::Resident,
    crate::Entity::Household,
    crate::Entity::Place,
    crate::Entity::Incident,
];

/// Most fields a district adds to one kind of record.
pub const MAX_FIELDS: usize = 50;

/// A field the district adds to a kind of record (a pension number on
/// residents, a gas supplier on households). Its values live in the
/// record's `extra`, by code, and are checked as a checklist item's answers
/// are, by the same function, on the phone and on the server.
///
/// Once published a field stays: a later catalogue may retire it (it leaves
/// the forms; captured values are kept and still checked), change its label
/// or whether it is required, or add options, but not remove it or change
/// what it holds.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FieldDef {
    /// The kind of record (`resident`, `household`, `place`, `incident`);
    /// a string, so that a phone reads a newer district's kinds and skips them.
    pub entity: String,
    /// Code, label, answer type (yes/no, number, text, choice), `required`
    /// and limits, as a checklist item has them; nothing fails or raises.
    #[serde(flatten)]
    pub item: ChecklistItem,
    /// No longer offered on forms; values already captured are kept.
    #[serde(default)]
    pub retired: bool,
}

impl FieldDef {
    /// The field's problem, if any, for a catalogue about to be published.
    fn problem(&self) -> Option<String> {
        let at = format!("field {}.{}", self.entity, self.item.code);
        if !EXTENSIBLE.iter().any(|e| e.as_str() == self.entity) {
            return Some(format!(
                "{at}: fields are added to resident, household, place or incident"
            ));
        }
        if matches!(self.item.answer, AnswerType::Photo) || self.item.raises.is_some() || !self.item.fails_on.is_empty()
        {
            return Some(format!(
                "{at}: a field is yes/no, number, text or choice, and never fails or raises"
            ));
        }
        item_problem(&self.item, &[], &at)
    }

    /// Whether it changed from `old`, the same field as published before,
    /// in a way that could make a value captured under `old` invalid: its
    /// answer type, an option taken away, a range or length narrowed. Its
    /// label, `required`, `retired`, added options and wider limits may change.
    fn changed_from(&self, old: &FieldDef) -> bool {
        let (new, was) = (&self.item, &old.item);
        let lower = |m: Option<f64>| m.unwrap_or(f64::NEG_INFINITY);
        let upper = |m: Option<f64>| m.unwrap_or(f64::INFINITY);
        new.answer != was.answer
            || lower(new.min) > lower(was.min)
            || upper(new.max) < upper(was.max)
            || new.text_limit() < was.text_limit()
            || !was.options.iter().all(|o| new.options.contains(o))
    }
}

/// What answers an item of a checklist.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerType {
    /// Yes or no (`true` / `false`).
    YesNo,
    /// A number, within `min`..=`max` when given.
    Number,
    /// Free text, at most `max_len` characters (500 unless given).
    Text,
    /// One of `options`.
    Choice,
    /// No value: one or more photos of the item.
    Photo,
    /// A type this build does not know (from a newer server): a checklist
    /// holding one cannot be filled in here.
    #[serde(other)]
    Unknown,
}

impl AnswerType {
    /// An answer of this type typed as text (a spreadsheet cell, a command
    /// line): yes/no as 是/否, yes/no, y/n, true/false or 1/0; a number;
    /// text or a choice as it is. `None` when it is not one.
    pub fn parse_text(self, text: &str) -> Option<crate::model::Answer> {
        use crate::model::Answer;
        let text = text.trim();
        match self {
            AnswerType::YesNo => match text {
                "是" | "yes" | "y" | "true" | "1" => Some(Answer::YesNo(true)),
                "否" | "no" | "n" | "false" | "0" => Some(Answer::YesNo(false)),
                _ => None,
            },
            AnswerType::Number => text.parse().ok().filter(|x: &f64| x.is_finite()).map(Answer::Number),
            AnswerType::Text | AnswerType::Choice => Some(Answer::Text(text.to_owned())),
            AnswerType::Photo | AnswerType::Unknown => None,
        }
    }
}

/// One question of a checklist.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ChecklistItem {
    /// Stable code, unique in its checklist (`detector_installed`).
    pub code: String,
    /// The question shown to workers.
    pub label_zh: String,
    /// What answers it.
    pub answer: AnswerType,
    /// An inspection must answer it (a photo item: at least one photo).
    #[serde(default)]
    pub required: bool,
    /// The choices of a choice item.
    #[serde(default)]
    pub options: Vec<String>,
    /// Smallest and largest number a number item accepts.
    #[serde(default)]
    pub min: Option<f64>,
    /// See `min`.
    #[serde(default)]
    pub max: Option<f64>,
    /// Longest text a text item accepts (characters).
    #[serde(default)]
    pub max_len: Option<u32>,
    /// The answers that fail the item: `false` or `true` for a yes/no item,
    /// option names for a choice item.
    #[serde(default)]
    pub fails_on: Vec<serde_json::Value>,
    /// The incident category a failed item raises (`gas_no_alarm`), if any.
    #[serde(default)]
    pub raises: Option<String>,
}

impl ChecklistItem {
    /// An optional item with no options, limits or failing answers.
    pub fn new(code: &str, label_zh: &str, answer: AnswerType) -> ChecklistItem {
        ChecklistItem {
            code: code.to_owned(),
            label_zh: label_zh.to_owned(),
            answer,
            required: false,
            options: Vec::new(),
            min: None,
            max: None,
            max_len: None,
            fails_on: Vec::new(),
            raises: None,
        }
    }

    /// The longest text a text item accepts, in characters: `max_len`
    /// (500 unless given), at most the notes limit.
    pub fn text_limit(&self) -> usize {
        const TEXT_MAX: usize = 500;
        self.max_len
            .map_or(TEXT_MAX, |m| (m as usize).min(crate::validate::limits::NOTES))
    }

    /// Whether `answer` fails the item.
    pub fn fails(&self, answer: &serde_json::Value) -> bool {
        self.fails_on.contains(answer)
    }
}

/// An inspection checklist the district publishes.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Checklist {
    /// Stable code (`gas_safety`).
    pub code: String,
    /// Name shown to workers.
    pub name_zh: String,
    /// English name.
    #[serde(default)]
    pub name_en: String,
    /// The questions, in order.
    pub items: Vec<ChecklistItem>,
}

impl Checklist {
    /// The item with `code`.
    pub fn item(&self, code: &str) -> Option<&ChecklistItem> {
        self.items.iter().find(|i| i.code == code)
    }

    /// Whether this build can fill it in (every answer type known).
    pub fn usable(&self) -> bool {
        !self.items.is_empty() && self.items.iter().all(|i| i.answer != AnswerType::Unknown)
    }

    /// The checklist's problem, if any, for a catalogue about to be
    /// published (`categories`: its incident categories).
    pub fn problem(&self, categories: &[Category]) -> Option<String> {
        let code = &self.code;
        if !is_code(code) {
            return Some(format!("checklist code {code:?}: use 1 to 64 of a-z, 0-9 and _"));
        }
        if self.name_zh.trim().is_empty() || self.items.is_empty() || self.items.len() > MAX_ITEMS {
            return Some(format!("checklist {code}: give name_zh and 1 to {MAX_ITEMS} items"));
        }
        let mut seen = std::collections::HashSet::new();
        for item in &self.items {
            let at = format!("checklist {code}, item {:?}", item.code);
            if !seen.insert(item.code.as_str()) {
                return Some(format!("{at}: item codes are a-z, 0-9 and _, each once"));
            }
            if let Some(p) = item_problem(item, categories, &at) {
                return Some(p);
            }
        }
        None
    }
}

/// Built-in terms (code, name), then a district's.
fn all_terms<'a>(builtin: impl Iterator<Item = (&'a str, Option<&'static str>)>, district: &[Term]) -> Vec<Term> {
    builtin
        .map(|(code, name)| Term {
            code: code.to_owned(),
            name_zh: name.unwrap_or(code).to_owned(),
            retired: false,
        })
        .chain(district.iter().cloned())
        .collect()
}

/// Most items a checklist has.
pub const MAX_ITEMS: usize = 60;

/// An item's problem, if any (`at` names it): its code, label, and options
/// and failing answers that fit its answer type; what it raises must be one
/// of `categories`.
fn item_problem(item: &ChecklistItem, categories: &[Category], at: &str) -> Option<String> {
    if !is_code(&item.code) {
        return Some(format!("{at}: item codes are a-z, 0-9 and _, each once"));
    }
    if item.label_zh.trim().is_empty() {
        return Some(format!("{at}: label_zh is required"));
    }
    let finite = |m: Option<f64>| m.is_none_or(f64::is_finite);
    if !finite(item.min) || !finite(item.max) || item.min.zip(item.max).is_some_and(|(lo, hi)| lo > hi) {
        return Some(format!("{at}: min and max are numbers, min at most max"));
    }
    if item.max_len == Some(0) {
        return Some(format!("{at}: max_len is at least 1"));
    }
    let mut options = std::collections::HashSet::new();
    if !item
        .options
        .iter()
        .all(|o| !o.trim().is_empty() && options.insert(o.as_str()))
    {
        return Some(format!("{at}: options are not blank, each once"));
    }
    let fails_ok = match item.answer {
        AnswerType::YesNo => item.fails_on.iter().all(serde_json::Value::is_boolean),
        AnswerType::Choice => {
            !item.options.is_empty()
                && item
                    .fails_on
                    .iter()
                    .all(|f| f.as_str().is_some_and(|f| item.options.iter().any(|o| o == f)))
        }
        AnswerType::Number | AnswerType::Text | AnswerType::Photo => item.fails_on.is_empty(),
        AnswerType::Unknown => return Some(format!("{at}: unknown answer type")),
    };
    if !fails_ok {
        return Some(format!(
            "{at}: options and fails_on do not fit a {:?} item",
            item.answer
        ));
    }
    if let Some(c) = &item.raises
        && (item.fails_on.is_empty() || !categories.iter().any(|k| &k.code == c))
    {
        return Some(format!("{at}: raises {c:?}, which is not a category or cannot fail"));
    }
    None
}

fn is_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 64
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// How often a visit rule wants each of its residents seen: once in every
/// calendar week (Monday to Sunday), month or quarter, China time.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Every {
    /// Once a week.
    Week,
    /// Once a calendar month.
    Month,
    /// Once a calendar quarter.
    Quarter,
    /// A period this build does not know (from a newer server): the rule is skipped.
    #[serde(other)]
    Unknown,
}

/// A district's rule for regular visits (the centre wants to know that every
/// elderly resident living alone was visited this month).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitRule {
    /// Stable code (`elderly_alone_monthly`).
    pub code: String,
    /// Name shown to workers.
    pub name_zh: String,
    /// English name.
    #[serde(default)]
    pub name_en: String,
    /// Residents with any of these care tags are covered.
    #[serde(default)]
    pub care_tags: Vec<String>,
    /// And these residents, by id, whatever their tags.
    #[serde(default)]
    pub resident_ids: Vec<String>,
    /// How often.
    pub every: Every,
    /// Service logs of these kinds (`visit`, `phone_check_in`, ...) linked
    /// to a resident complete that resident's visit.
    pub kinds: Vec<String>,
    /// Days before the period ends from which a visit not yet made is due
    /// soon; 0 means the default (2 for a week, 7 for a month, 14 for a quarter).
    #[serde(default)]
    pub soon_days: u32,
}

impl VisitRule {
    /// Whether a service log of `kind` completes this rule's visit.
    pub fn completed_by(&self, kind: &str) -> bool {
        self.kinds.iter().any(|k| k == kind)
    }

    /// Whether this build can apply the rule: a known period, and at least
    /// one care tag or resident to cover and one service kind to count.
    pub fn applies(&self) -> bool {
        self.every != Every::Unknown
            && (!self.care_tags.is_empty() || !self.resident_ids.is_empty())
            && !self.kinds.is_empty()
    }

    /// The rule's problem, if any, for a catalogue about to be published:
    /// unknown tags, kinds or period, or nothing to cover.
    pub fn problem(&self, catalogue: &Catalogue) -> Option<String> {
        let code = &self.code;
        if !is_code(code) {
            return Some(format!("visit rule code {code:?}: use 1 to 64 of a-z, 0-9 and _"));
        }
        if self.name_zh.trim().is_empty() {
            return Some(format!("visit rule {code}: name_zh is required"));
        }
        if let Some(t) = self.care_tags.iter().find(|t| !catalogue.has_care_tag(t)) {
            return Some(format!("visit rule {code}: unknown care tag {t:?}"));
        }
        if let Some(k) = self.kinds.iter().find(|k| !catalogue.has_service_kind(k)) {
            return Some(format!("visit rule {code}: unknown service kind {k:?}"));
        }
        let retired = |k: &String| catalogue.service_kinds.iter().any(|t| &t.code == k && t.retired);
        if !self.kinds.is_empty() && self.kinds.iter().all(retired) {
            return Some(format!(
                "visit rule {code}: every service kind it counts is retired, so no visit could complete it"
            ));
        }
        if let Some(id) = self.resident_ids.iter().find(|id| !crate::rules::is_record_id(id)) {
            return Some(format!("visit rule {code}: {id:?} is not a record id"));
        }
        if self.resident_ids.len() > 10_000 {
            return Some(format!("visit rule {code}: list at most 10000 residents"));
        }
        if self.soon_days > 92 {
            return Some(format!("visit rule {code}: soon_days is at most 92"));
        }
        (!self.applies())
            .then(|| format!("visit rule {code}: give a period, care tags or residents, and service kinds"))
    }
}

impl Catalogue {
    /// The category with `code`.
    pub fn get(&self, code: &str) -> Option<&Category> {
        self.categories.iter().find(|c| c.code == code)
    }

    /// The visit rule with `code`.
    pub fn visit_rule(&self, code: &str) -> Option<&VisitRule> {
        self.visit_rules.iter().find(|r| r.code == code)
    }

    /// What stops this catalogue from being published, if anything: no
    /// categories, or a visit rule that is wrong or given twice.
    pub fn problem(&self) -> Option<String> {
        if self.categories.is_empty() {
            return Some("a catalogue needs categories".into());
        }
        if let Some(p) = terms_problem(&self.care_tags, "care tag", |c| CareTag::builtin(c).is_some()).or_else(|| {
            terms_problem(&self.service_kinds, "service kind", |c| {
                ServiceKind::builtin(c).is_some()
            })
        }) {
            return Some(p);
        }
        let mut codes = std::collections::HashSet::new();
        for rule in &self.visit_rules {
            if let Some(p) = rule.problem(self) {
                return Some(p);
            }
            if !codes.insert(rule.code.as_str()) {
                return Some(format!("visit rule {} is given twice", rule.code));
            }
        }
        let mut codes = std::collections::HashSet::new();
        for checklist in &self.checklists {
            if let Some(p) = checklist.problem(&self.categories) {
                return Some(p);
            }
            if !codes.insert(checklist.code.as_str()) {
                return Some(format!("checklist {} is given twice", checklist.code));
            }
        }
        let mut codes = std::collections::HashSet::new();
        for def in &self.field_defs {
            if let Some(p) = def.problem() {
                return Some(p);
            }
            if !codes.insert((def.entity.as_str(), def.item.code.as_str())) {
                return Some(format!("field {}.{} is given twice", def.entity, def.item.code));
            }
        }
        if let Some(e) = EXTENSIBLE
            .iter()
            .find(|e| self.field_defs.iter().filter(|d| d.entity == e.as_str()).count() > MAX_FIELDS)
        {
            return Some(format!("give {} at most {MAX_FIELDS} fields", e.as_str()));
        }
        None
    }

    /// What stops this catalogue from following `in_force`, the one
    /// published before: phones fill in offline what they have, so a
    /// published checklist never changes under its code, and a published
    /// field is never removed (captured values would lose their meaning) nor
    /// changed in what it holds (they would stop being valid).
    pub fn succession_problem(&self, in_force: &Catalogue) -> Option<String> {
        if let Some(changed) = self
            .checklists
            .iter()
            .find(|c| in_force.checklist(&c.code).is_some_and(|old| old != *c))
        {
            return Some(format!(
                "checklist {} exists: publish a changed checklist under a new code",
                changed.code
            ));
        }
        for (old, new, what) in [
            (&in_force.care_tags, &self.care_tags, "care tag"),
            (&in_force.service_kinds, &self.service_kinds, "service kind"),
        ] {
            if let Some(gone) = old.iter().find(|o| !new.iter().any(|n| n.code == o.code)) {
                return Some(format!(
                    "{what} {} exists: retire it instead (records keep it)",
                    gone.code
                ));
            }
        }
        for old in &in_force.field_defs {
            let at = format!("field {}.{}", old.entity, old.item.code);
            match self
                .field_defs
                .iter()
                .find(|d| d.entity == old.entity && d.item.code == old.item.code)
            {
                None => return Some(format!("{at} exists: retire it instead (its values are kept)")),
                Some(new) if new.changed_from(old) => {
                    return Some(format!(
                        "{at} exists: change its label, whether it is required or retired, or add options; \
                         a field holding something else is a new code"
                    ));
                }
                Some(_) => {}
            }
        }
        None
    }

    /// Whether `code` is a care tag: a built-in one or the district's
    /// (retired ones included: records keep them).
    pub fn has_care_tag(&self, code: &str) -> bool {
        CareTag::builtin(code).is_some() || self.care_tags.iter().any(|t| t.code == code)
    }

    /// Whether `code` is a service kind, as `has_care_tag`.
    pub fn has_service_kind(&self, code: &str) -> bool {
        ServiceKind::builtin(code).is_some() || self.service_kinds.iter().any(|t| t.code == code)
    }

    /// Every care tag with its name: the built-in ones, then the district's
    /// (retired ones flagged: forms leave them out, records keep them).
    pub fn care_tag_terms(&self) -> Vec<Term> {
        all_terms(
            CareTag::ALL.iter().map(|t| (t.as_str(), t.builtin_name())),
            &self.care_tags,
        )
    }

    /// Every service kind with its name, as `care_tag_terms`.
    pub fn service_kind_terms(&self) -> Vec<Term> {
        all_terms(
            ServiceKind::ALL.iter().map(|k| (k.as_str(), k.builtin_name())),
            &self.service_kinds,
        )
    }

    /// The fields a form for records of `entity` offers: not retired, of an
    /// answer type this build knows (values of the others stay in records).
    pub fn form_fields(&self, entity: crate::Entity) -> impl Iterator<Item = &FieldDef> {
        self.fields_of(entity)
            .filter(|d| !d.retired && d.item.answer != AnswerType::Unknown)
    }

    /// The fields the district adds to records of `entity`, retired ones included.
    pub fn fields_of(&self, entity: crate::Entity) -> impl Iterator<Item = &FieldDef> {
        self.field_defs.iter().filter(move |d| d.entity == entity.as_str())
    }

    /// The checklist with `code`.
    pub fn checklist(&self, code: &str) -> Option<&Checklist> {
        self.checklists.iter().find(|c| c.code == code)
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
        let rule = |code: &str, zh: &str, en: &str, tags: &[&str], every, kinds: &[&str]| VisitRule {
            code: code.to_owned(),
            name_zh: zh.to_owned(),
            name_en: en.to_owned(),
            care_tags: tags.iter().map(|t| (*t).to_owned()).collect(),
            resident_ids: Vec::new(),
            every,
            kinds: kinds.iter().map(|k| (*k).to_owned()).collect(),
            soon_days: 0,
        };
        Catalogue {
            version: 1,
            checklists: builtin_checklists(),
            field_defs: Vec::new(),
            care_tags: Vec::new(),
            service_kinds: Vec::new(),
            visit_rules: vec![
                rule(
                    "elderly_alone_weekly_call",
                    "独居老人每周电话问候",
                    "Weekly call to elderly living alone",
                    &["elderly_living_alone"],
                    Every::Week,
                    &["phone_check_in", "visit"],
                ),
                rule(
                    "elderly_alone_monthly_visit",
                    "独居老人每月走访",
                    "Monthly visit to elderly living alone",
                    &["elderly_living_alone"],
                    Every::Month,
                    &["visit", "food_delivery", "medicine_delivery"],
                ),
                rule(
                    "care_quarterly_visit",
                    "困难群众每季度走访",
                    "Quarterly visit to residents in hardship",
                    &[
                        "disabled",
                        "special_hardship",
                        "subsistence_allowance",
                        "empty_nest_elderly",
                    ],
                    Every::Quarter,
                    &["visit"],
                ),
            ],
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

/// The checklists this build ships with: the district's three standing
/// safety inspections (DOMAIN.md).
fn builtin_checklists() -> Vec<Checklist> {
    use serde_json::json;
    let item =
        |code: &str, label: &str, answer, fails_on: Vec<serde_json::Value>, raises: Option<&str>| ChecklistItem {
            required: answer != AnswerType::Photo,
            fails_on,
            raises: raises.map(str::to_owned),
            ..ChecklistItem::new(code, label, answer)
        };
    use AnswerType::*;
    let mut gas = vec![
        item(
            "detector_installed",
            "已安装可燃气体报警器",
            YesNo,
            vec![json!(false)],
            Some("gas_no_alarm"),
        ),
        item(
            "nothing_on_pipes",
            "燃气管道上无悬挂物品",
            YesNo,
            vec![json!(false)],
            Some("gas_pipe_objects"),
        ),
        item(
            "ventilation_ok",
            "厨房通风、照明良好",
            YesNo,
            vec![json!(false)],
            Some("gas_ventilation_lighting"),
        ),
        item("hose_years", "燃气软管使用年限（年）", Number, vec![], None),
        item("meter_photo", "燃气表及管道照片", Photo, vec![], None),
        item("remarks", "其他情况", Text, vec![], None),
    ];
    gas[3].min = Some(0.0);
    gas[3].max = Some(50.0);
    gas[3].required = false;
    gas[5].required = false;
    let mut fire = vec![
        item(
            "exit_clear",
            "消防通道畅通",
            YesNo,
            vec![json!(false)],
            Some("fire_exit_blocked"),
        ),
        item(
            "extinguisher",
            "灭火器状态",
            Choice,
            vec![json!("缺失"), json!("过期")],
            Some("other_safety_hazard"),
        ),
        item("exit_photo", "消防通道照片", Photo, vec![], None),
    ];
    fire[1].options = vec!["完好".into(), "过期".into(), "缺失".into()];
    fire[2].required = true;
    let ebike = vec![
        item(
            "indoor_charging",
            "电动车入户或楼道充电",
            YesNo,
            vec![json!(true)],
            Some("ebike_indoor_charging"),
        ),
        item("bikes_in_corridor", "楼道停放电动车数量", Number, vec![], None),
    ];
    let checklist = |code: &str, zh: &str, en: &str, items| Checklist {
        code: code.to_owned(),
        name_zh: zh.to_owned(),
        name_en: en.to_owned(),
        items,
    };
    vec![
        checklist("gas_safety", "燃气安全检查", "Gas safety", gas),
        checklist("fire_exits", "消防通道检查", "Fire exits", fire),
        checklist("ebike_charging", "电动车充电检查", "E-bike charging", ebike),
    ]
}

/// The fields the demo district adds (`fieldgrid demo` publishes them; the
/// tests use them): a resident's disability grade and allowance, a
/// household's gas supplier (required) and smoke alarm, a place's property
/// company and how many people an incident affects.
pub fn demo_field_defs() -> Vec<FieldDef> {
    let def = |entity: &str, code: &str, label: &str, answer, required| FieldDef {
        entity: entity.to_owned(),
        item: ChecklistItem {
            required,
            ..ChecklistItem::new(code, label, answer)
        },
        retired: false,
    };
    use AnswerType::*;
    let mut grade = def("resident", "disability_grade", "残疾等级", Choice, false);
    grade.item.options = ["一级", "二级", "三级", "四级"].map(String::from).to_vec();
    let mut allowance = def("resident", "monthly_allowance", "低保金额（元/月）", Number, false);
    allowance.item.min = Some(0.0);
    allowance.item.max = Some(10_000.0);
    let mut supplier = def("household", "gas_supplier", "燃气供应", Choice, true);
    supplier.item.options = ["管道天然气", "瓶装液化气", "未通燃气"].map(String::from).to_vec();
    let mut company = def("place", "property_company", "物业公司", Text, false);
    company.item.max_len = Some(60);
    let mut affected = def("incident", "people_affected", "影响人数", Number, false);
    affected.item.min = Some(0.0);
    affected.item.max = Some(100_000.0);
    vec![
        grade,
        allowance,
        supplier,
        def("household", "smoke_alarm", "安装烟感报警器", YesNo, false),
        company,
        affected,
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checklists_that_do_not_fit_their_answer_types_are_refused_at_publishing() {
        let builtin = Catalogue::builtin();
        assert!(builtin.checklists.iter().all(Checklist::usable));
        let with = |change: &dyn Fn(&mut ChecklistItem)| {
            let mut c = builtin.clone();
            change(&mut c.checklists[0].items[0]);
            c.problem()
        };
        assert_eq!(with(&|_| {}), None);
        for (why, change) in [
            (
                "an unknown category",
                &(|i: &mut ChecklistItem| i.raises = Some("ufo".into())) as &dyn Fn(&mut ChecklistItem),
            ),
            ("a yes/no failing on text", &|i| {
                i.fails_on = vec![serde_json::json!("no")]
            }),
            ("a choice with no options", &|i| i.answer = AnswerType::Choice),
            ("a number that fails", &|i| i.answer = AnswerType::Number),
            ("raising what cannot fail", &|i| i.fails_on.clear()),
            ("a bad code", &|i| i.code = "Detector Installed".into()),
        ] {
            assert!(with(change).is_some(), "{why}");
        }
        let mut twice = builtin.clone();
        twice.checklists.push(twice.checklists[0].clone());
        assert!(twice.problem().is_some_and(|p| p.contains("twice")));
    }

    fn with_fields() -> Catalogue {
        let mut c = Catalogue::builtin();
        c.field_defs = demo_field_defs();
        c
    }

    #[test]
    fn fields_that_do_not_fit_are_refused_at_publishing() {
        assert_eq!(with_fields().problem(), None);
        for (why, change) in [
            (
                "a record kind that takes no fields",
                &(|d: &mut FieldDef| d.entity = "service_log".into()) as &dyn Fn(&mut FieldDef),
            ),
            ("a photo field", &|d| d.item.answer = AnswerType::Photo),
            ("a field that fails", &|d| {
                d.item.fails_on = vec![serde_json::json!("一级")]
            }),
            ("a choice with no options", &|d| d.item.options.clear()),
            ("a bad code", &|d| d.item.code = "Grade".into()),
            ("no label", &|d| d.item.label_zh = " ".into()),
            ("a blank option", &|d| d.item.options.push(" ".into())),
            ("an option twice", &|d| d.item.options.push("一级".into())),
            ("min above max", &|d| {
                d.item.min = Some(5.0);
                d.item.max = Some(1.0)
            }),
            ("a bound that is no number", &|d| d.item.max = Some(f64::NAN)),
            ("no length", &|d| d.item.max_len = Some(0)),
        ] {
            let mut c = with_fields();
            change(&mut c.field_defs[0]);
            assert!(c.problem().is_some(), "{why}");
        }
        let mut twice = with_fields();
        twice.field_defs.push(twice.field_defs[0].clone());
        assert!(twice.problem().is_some_and(|p| p.contains("twice")));
        // The same code on another kind of record is another field.
        let mut other_kind = with_fields();
        let mut on_household = other_kind.field_defs[0].clone();
        on_household.entity = "household".into();
        other_kind.field_defs.push(on_household);
        assert_eq!(other_kind.problem(), None);
    }

    #[test]
    fn a_published_field_is_retired_never_removed_nor_changed_in_what_it_holds() {
        let old = with_fields();
        let next = |change: &dyn Fn(&mut Catalogue)| {
            let mut c = old.clone();
            c.version += 1;
            change(&mut c);
            c.succession_problem(&old)
        };
        assert_eq!(next(&|_| {}), None);
        // Allowed: retire, relabel, require or not, add options, add fields.
        assert_eq!(
            next(&|c| {
                let d = &mut c.field_defs[0];
                d.retired = true;
                d.item.label_zh = "残疾等级（旧）".into();
                d.item.required = true;
                d.item.options.push("未评定".into());
                c.field_defs.push(FieldDef {
                    entity: "resident".into(),
                    ..c.field_defs[1].clone()
                });
                c.field_defs.last_mut().unwrap().item.code = "new_field".into();
            }),
            None
        );
        for (why, change) in [
            (
                "removed",
                &(|c: &mut Catalogue| {
                    c.field_defs.remove(0);
                }) as &dyn Fn(&mut Catalogue),
            ),
            ("an option dropped", &|c| {
                c.field_defs[0].item.options.pop();
            }),
            ("another answer type", &|c| {
                c.field_defs[1].item.answer = AnswerType::Text
            }),
            ("a narrower range", &|c| c.field_defs[1].item.max = Some(100.0)),
            ("a shorter text", &|c| c.field_defs[4].item.max_len = Some(10)),
            ("a higher minimum", &|c| c.field_defs[1].item.min = Some(1.0)),
        ] {
            assert!(next(change).is_some(), "{why}");
        }
        // Wider limits keep every value captured valid: allowed.
        assert_eq!(
            next(&|c| {
                c.field_defs[1].item.max = Some(20_000.0);
                c.field_defs[1].item.min = None;
                c.field_defs[4].item.max_len = Some(200);
            }),
            None
        );
        // And checklists, as before: a changed one is a new code.
        assert!(
            next(&|c| c.checklists[0].items[0].label_zh = "改".into())
                .is_some_and(|p| p.contains("checklist gas_safety"))
        );
    }

    fn term(code: &str) -> Term {
        Term {
            code: code.into(),
            name_zh: "重点关注".into(),
            retired: false,
        }
    }

    #[test]
    fn a_districts_care_tags_and_service_kinds_are_new_codes_kept_once_published() {
        let mut c = Catalogue::builtin();
        c.care_tags.push(term("key_watch"));
        c.service_kinds.push(term("haircut_at_home"));
        assert_eq!(c.problem(), None);
        assert!(c.has_care_tag("key_watch") && c.has_care_tag("disabled") && !c.has_care_tag("vip"));
        assert!(c.has_service_kind("haircut_at_home") && !c.has_care_tag("haircut_at_home"));
        for bad in ["disabled", "Key Watch", ""] {
            let mut c = c.clone();
            c.care_tags.push(term(bad));
            assert!(c.problem().is_some(), "{bad:?}");
        }
        let mut twice = c.clone();
        twice.service_kinds.push(term("haircut_at_home"));
        assert!(twice.problem().is_some());
        // Listed for forms: built-in first, then the district's.
        let offered: Vec<_> = c.care_tag_terms().into_iter().map(|t| t.code).collect();
        assert_eq!(offered.first().map(String::as_str), Some("elderly_living_alone"));
        assert_eq!(offered.last().map(String::as_str), Some("key_watch"));
        let mut next = c.clone();
        next.version += 1;
        next.care_tags[0].retired = true;
        assert_eq!(next.succession_problem(&c), None);
        assert!(next.care_tag_terms().iter().any(|t| t.code == "key_watch" && t.retired));
        assert!(next.has_care_tag("key_watch"), "records keep a retired tag");
        // A retired field leaves the forms; a field of an unknown type is not offered.
        let mut fields = with_fields();
        fields.field_defs[2].retired = true;
        fields.field_defs[3].item.answer = AnswerType::Unknown;
        assert_eq!(fields.form_fields(crate::Entity::Household).count(), 0);
        assert_eq!(fields.form_fields(crate::Entity::Resident).count(), 2);
        next.service_kinds.clear();
        assert!(
            next.succession_problem(&c)
                .is_some_and(|p| p.contains("haircut_at_home"))
        );
    }

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
