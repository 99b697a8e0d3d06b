//! Generated data ([`fieldgrid_domain::datagen`]), and a store filled with it.

pub use fieldgrid_domain::datagen::*;

use crate::capture::{NewHousehold, NewPlace};
use crate::error::Result;
use crate::model::{Grid, PlaceKind};
use crate::store::Store;

/// What [`populate_grid`] built.
#[derive(Clone, Debug, Default)]
pub struct Populated {
    /// Building ids.
    pub buildings: Vec<String>,
    /// Household ids.
    pub households: Vec<String>,
    /// Resident ids.
    pub residents: Vec<String>,
}

/// Fills a grid with one compound of `buildings` buildings (2 units each, 6
/// floors, 2 rooms a floor) and about `residents` residents, 2–3 a household.
/// Households and residents go through the bulk import path.
pub fn populate_grid(
    store: &Store,
    rng: &mut Rng,
    grid: &Grid,
    buildings: usize,
    residents: usize,
) -> Result<Populated> {
    let (compound_name, _, _) = *rng.pick(&COMPOUNDS);
    let compound = store.create_place(&NewPlace {
        extra: Vec::new(),
        grid_id: grid.id.clone(),
        kind: PlaceKind::Compound,
        parent_id: None,
        name: compound_name.to_owned(),
    })?;
    let mut out = Populated::default();
    let mut new_households = Vec::new();
    for b in 1..=buildings {
        let building = store.create_place(&NewPlace {
            extra: Vec::new(),
            grid_id: grid.id.clone(),
            kind: PlaceKind::Building,
            parent_id: Some(compound.id.clone()),
            name: format!("{b}号楼"),
        })?;
        for u in 1..=2 {
            let unit = store.create_place(&NewPlace {
                extra: Vec::new(),
                grid_id: grid.id.clone(),
                kind: PlaceKind::Unit,
                parent_id: Some(building.id.clone()),
                name: format!("{u}单元"),
            })?;
            for floor in 1..=6 {
                for room in 1..=2 {
                    new_households.push(NewHousehold {
                        extra: Vec::new(),
                        grid_id: grid.id.clone(),
                        unit_id: Some(unit.id.clone()),
                        room: format!("{floor}0{room}"),
                        address: None,
                        notes: String::new(),
                    });
                }
            }
        }
        out.buildings.push(building.id);
    }
    // Enough households for 2.5 residents each: more floors if needed.
    let wanted = residents.div_ceil(5) * 2;
    let per_pass = new_households.len();
    let mut extra = 0;
    while new_households.len() < wanted && per_pass > 0 {
        let mut h = new_households[extra % per_pass].clone();
        h.room = format!("{}{:02}", 7 + extra / per_pass, extra % 2 + 1);
        new_households.push(h);
        extra += 1;
    }
    out.households = store.import_households(&new_households)?.created;
    let rows = self::residents(rng, &grid.id, &out.households, residents);
    out.residents = store.import_residents(&rows)?.created;
    Ok(out)
}
