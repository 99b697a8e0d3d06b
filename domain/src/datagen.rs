//! Realistic generated data for benchmarks, the demo, load tests and tests:
//! Chinese names, valid Dongying District (370502) ID numbers, mobile
//! numbers, compounds and buildings from the reference report, care tags at
//! plausible rates. Deterministic for a seed. Small enough to ship; the one
//! place such data is made (the core's `datagen` adds filling a store).

use chrono::NaiveDate;

use crate::input::NewResident;
use crate::model::{CareTag, Grid, ResidenceStatus, Sex};
use crate::validate::id_number::check_character;

/// Dongying District's administrative region code.
pub const DONGYING_REGION: &str = "370502";

/// The 100 most common surnames, most frequent first (DOMAIN.md).
pub const SURNAMES: &str = "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢姜崔钟谭陆汪范金石廖贾夏韦付方白邹孟熊秦邱江尹薛闫段雷侯龙史陶黎贺顾毛郝龚邵万钱严覃武戴莫孔向汤";

/// Characters common in given names.
pub const GIVEN: &str = "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉兰萍鹏辉玲建国建华志强海燕丹宁浩宇欣怡梓涵子轩雨桐佳琪晨阳俊杰文博思远立新淑珍凤兰金凤德胜红梅春花";

/// Compounds named in the reference report, with their community.
pub const COMPOUNDS: [(&str, &str, &str); 5] = [
    ("格林盛景小区", "汇泉社区", "黄河路街道"),
    ("科教小区", "科苑社区", "胜园街道"),
    ("玉景花园", "玉景社区", "黄河路街道"),
    ("汇丰家园", "汇丰社区", "黄河路街道"),
    ("中山小区", "中山社区", "文汇街道"),
];

/// A small deterministic generator (SplitMix64): the same seed gives the same data.
#[derive(Clone, Debug)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n` > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64 <= p
    }

    /// One item of a non-empty slice.
    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len() as u64) as usize]
    }

    fn pick_char(&mut self, s: &str) -> char {
        let chars: Vec<char> = s.chars().collect();
        *self.pick(&chars)
    }
}

/// A Chinese name: a common surname, weighted to the most frequent, and one
/// or two given-name characters.
pub fn person_name(rng: &mut Rng) -> String {
    let surnames: Vec<char> = SURNAMES.chars().collect();
    // Squaring a uniform number favours the front of the list (王, 李, 张...).
    let u = rng.below(10_000) as f64 / 10_000.0;
    let surname = surnames[((u * u) * surnames.len() as f64) as usize];
    let mut name = surname.to_string();
    name.push(rng.pick_char(GIVEN));
    if rng.chance(0.6) {
        name.push(rng.pick_char(GIVEN));
    }
    name
}

/// A valid 18-character ID number registered in Dongying District.
pub fn id_number(rng: &mut Rng, birth: NaiveDate, sex: Sex) -> String {
    let seq = rng.below(50) * 2 + if sex == Sex::Male { 1 } else { 0 };
    let mut s = format!(
        "{DONGYING_REGION}{}{:02}{}",
        birth.format("%Y%m%d"),
        rng.below(100),
        seq % 10
    );
    let check = check_character(s.as_bytes()) as char;
    s.push(check);
    s
}

/// A mainland mobile number.
pub fn mobile(rng: &mut Rng) -> String {
    let prefix = rng.pick(&["135", "138", "139", "150", "152", "158", "177", "186", "188", "199"]);
    format!("{prefix}{:08}", rng.below(100_000_000))
}

/// A birth date between 1930 and 2020.
pub fn birth_date(rng: &mut Rng) -> NaiveDate {
    let start = NaiveDate::from_ymd_opt(1930, 1, 1).unwrap_or_default();
    start + chrono::Days::new(rng.below(90 * 365))
}

/// Care tags at plausible rates, older residents more often.
pub fn care_tags(rng: &mut Rng, birth: NaiveDate) -> Vec<CareTag> {
    let old = birth < NaiveDate::from_ymd_opt(1960, 1, 1).unwrap_or_default();
    let young = birth > NaiveDate::from_ymd_opt(2010, 1, 1).unwrap_or_default();
    let mut tags = Vec::new();
    if old && rng.chance(0.15) {
        tags.push(CareTag::ElderlyLivingAlone);
    }
    if old && rng.chance(0.10) {
        tags.push(CareTag::EmptyNestElderly);
    }
    if rng.chance(0.02) {
        tags.push(CareTag::Disabled);
    }
    if rng.chance(0.02) {
        tags.push(CareTag::SubsistenceAllowance);
    }
    if young && rng.chance(0.05) {
        tags.push(CareTag::LeftBehindChild);
    }
    tags
}

/// A resident of `household_id` in `grid_id`, with every field filled.
pub fn resident(rng: &mut Rng, grid_id: &str, household_id: Option<&str>) -> NewResident {
    let sex = if rng.chance(0.5) { Sex::Male } else { Sex::Female };
    let birth = birth_date(rng);
    NewResident {
        extra: Vec::new(),
        grid_id: grid_id.to_owned(),
        household_id: household_id.map(str::to_owned),
        name: person_name(rng),
        sex,
        id_number: Some(id_number(rng, birth, sex)),
        birth_date: None,
        phone: rng.chance(0.8).then(|| mobile(rng)),
        residence: *rng.pick(ResidenceStatus::ALL),
        care_tags: care_tags(rng, birth),
        notes: String::new(),
    }
}

/// `n` residents spread evenly over `households`, with distinct ID numbers
/// (random ones collide by the birthday paradox at district scale).
pub fn residents(rng: &mut Rng, grid_id: &str, households: &[String], n: usize) -> Vec<NewResident> {
    let mut used = std::collections::HashSet::with_capacity(n);
    (0..n)
        .map(|i| {
            let household = households.get(i * households.len() / n.max(1)).map(String::as_str);
            loop {
                let r = resident(rng, grid_id, household);
                if used.insert(r.id_number.clone()) {
                    return r;
                }
            }
        })
        .collect()
}

/// A grid of the reference district.
pub fn grid(n: usize) -> Grid {
    let (_, community, sub_district) = COMPOUNDS[n % COMPOUNDS.len()];
    Grid {
        id: format!("grid-{n:04}"),
        code: format!("370502{:03}{n:03}", n % 1000),
        name: format!("{community}第{}网格", n + 1),
        community: community.to_owned(),
        sub_district: sub_district.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::IdNumber;

    #[test]
    fn generated_people_are_valid_and_repeatable() {
        let today = NaiveDate::from_ymd_opt(2026, 11, 26).unwrap();
        let mut a = Rng::new(7);
        let mut b = Rng::new(7);
        for _ in 0..1000 {
            let r = resident(&mut a, "g", None);
            let id = IdNumber::parse(r.id_number.as_deref().unwrap(), today).unwrap();
            assert_eq!(id.sex(), r.sex);
            assert_eq!(id.region_code(), DONGYING_REGION);
            if let Some(p) = &r.phone {
                crate::validate::Phone::parse(p).unwrap();
            }
            assert!((2..=3).contains(&r.name.chars().count()));
            assert_eq!(resident(&mut b, "g", None).name, r.name);
        }
    }
}
