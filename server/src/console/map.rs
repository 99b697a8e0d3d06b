//! Incidents on a map: points from their stored coordinates, converted to
//! GCJ-02 (the datum of the maps used in China), drawn as SVG in Web
//! Mercator. No tile service is needed (the district LAN may have none);
//! where one is configured, its tiles are laid under the points.

use std::sync::Arc;

use askama::Template;
use axum::extract::{Query, State};
use fieldgrid_domain::validate::CoordinateSystem;
use fieldgrid_protocol::{GridInfo, Role};

use super::incidents::{Names, QueueQuery, gcj02_of};
use super::{Chrome, PageResult, User, china_time, render, status_label};
use crate::AppState;
use crate::centre;
use crate::store::IncidentSort;

/// The most points drawn at once (the newest that match).
const MAX_POINTS: usize = 1_000;
/// Drawing size in px.
const WIDTH: f64 = 960.0;
const HEIGHT: f64 = 640.0;

// GCJ-02 is published only as an algorithm, and the crates that implement
// it are unmaintained single releases; the conversion is the well-known
// formula (Krasovsky 1940 ellipsoid), checked below against the reference
// values of the widely used eviltransform implementations.
const A: f64 = 6_378_245.0;
const EE: f64 = 0.006_693_421_622_965_943;

fn out_of_china(lat: f64, lon: f64) -> bool {
    !(72.004..=137.8347).contains(&lon) || !(0.8293..=55.8271).contains(&lat)
}

fn shift(lat: f64, lon: f64) -> (f64, f64) {
    use std::f64::consts::PI;
    let (x, y) = (lon - 105.0, lat - 35.0);
    let common = (20.0 * (6.0 * x * PI).sin() + 20.0 * (2.0 * x * PI).sin()) * 2.0 / 3.0;
    let mut dlat = -100.0 + 2.0 * x + 3.0 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * x.abs().sqrt() + common;
    dlat += (20.0 * (y * PI).sin() + 40.0 * (y / 3.0 * PI).sin()) * 2.0 / 3.0;
    dlat += (160.0 * (y / 12.0 * PI).sin() + 320.0 * (y * PI / 30.0).sin()) * 2.0 / 3.0;
    let mut dlon = 300.0 + x + 2.0 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * x.abs().sqrt() + common;
    dlon += (20.0 * (x * PI).sin() + 40.0 * (x / 3.0 * PI).sin()) * 2.0 / 3.0;
    dlon += (150.0 * (x / 12.0 * PI).sin() + 300.0 * (x / 30.0 * PI).sin()) * 2.0 / 3.0;
    let rad = lat / 180.0 * PI;
    let magic = 1.0 - EE * rad.sin() * rad.sin();
    let sqrt_magic = magic.sqrt();
    (
        dlat * 180.0 / ((A * (1.0 - EE)) / (magic * sqrt_magic) * PI),
        dlon * 180.0 / (A / sqrt_magic * rad.cos() * PI),
    )
}

/// A point in GCJ-02 (latitude, longitude) from any of the datums a phone
/// may report. Points outside China are not shifted (GCJ-02 is defined
/// there only).
pub fn to_gcj02(lat: f64, lon: f64, crs: CoordinateSystem) -> (f64, f64) {
    match crs {
        CoordinateSystem::Gcj02 => (lat, lon),
        CoordinateSystem::Wgs84 if out_of_china(lat, lon) => (lat, lon),
        CoordinateSystem::Wgs84 => {
            let (dlat, dlon) = shift(lat, lon);
            (lat + dlat, lon + dlon)
        }
        CoordinateSystem::Bd09 => {
            let x_pi = std::f64::consts::PI * 3000.0 / 180.0;
            let (x, y) = (lon - 0.0065, lat - 0.006);
            let z = (x * x + y * y).sqrt() - 0.000_02 * (y * x_pi).sin();
            let theta = y.atan2(x) - 0.000_003 * (x * x_pi).cos();
            (z * theta.sin(), z * theta.cos())
        }
    }
}

/// Web Mercator world pixel of a point at zoom `z` (256 px tiles).
fn world_px(lat: f64, lon: f64, z: u32) -> (f64, f64) {
    let size = 256.0 * f64::from(1u32 << z);
    let lat = lat.clamp(-85.05, 85.05).to_radians();
    let x = (lon + 180.0) / 360.0 * size;
    let y = (1.0 - (lat.tan() + 1.0 / lat.cos()).ln() / std::f64::consts::PI) / 2.0 * size;
    (x, y)
}

/// The origin (`https://host:port`) of a tile URL template, for the
/// console's content security policy.
pub fn tile_origin(template: &str) -> Option<String> {
    let u = url::Url::parse(&template.replace(['{', '}'], "")).ok()?;
    Some(u.origin().ascii_serialization())
}

/// A point drawn.
pub struct Point {
    id: String,
    x: String,
    y: String,
    class: &'static str,
    title: String,
}

/// A place name drawn on the map.
pub struct Label {
    name: String,
    x: String,
    y: String,
}

/// A scale bar at this latitude and zoom: its length in px and its label
/// (a round number of metres or kilometres near 120 px).
fn scale_bar(lat: f64, zoom: u32) -> (String, String) {
    let metres_per_px = 156_543.033_92 * lat.to_radians().cos() / f64::from(1u32 << zoom);
    let target = metres_per_px * 120.0;
    let magnitude = 10f64.powf(target.log10().floor());
    let metres = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .rfind(|m| *m <= target)
        .unwrap_or(magnitude);
    let label = if metres >= 1000.0 {
        format!("{} 公里", metres / 1000.0)
    } else {
        format!("{metres} 米")
    };
    (format!("{:.1}", metres / metres_per_px), label)
}

/// A tile laid under the points.
pub struct Tile {
    href: String,
    x: String,
    y: String,
}

#[derive(Template)]
#[template(path = "console/map.html")]
struct MapPage {
    chrome: Chrome,
    q: QueueQuery,
    statuses: Vec<super::incidents::Choice>,
    sub_districts: Vec<super::incidents::Choice>,
    categories: Vec<super::incidents::Choice>,
    points: Vec<Point>,
    tiles: Vec<Tile>,
    labels: Vec<Label>,
    scale: (String, String),
    without_location: usize,
    capped: bool,
    width: f64,
    height: f64,
}

/// `GET /console/map`: the newest incidents that match the queue's filters
/// (at most [`MAX_POINTS`]), as points.
pub async fn page(State(state): State<Arc<AppState>>, user: User, Query(q): Query<QueueQuery>) -> PageResult {
    user.require(&[Role::Operator])?;
    let names = Names::load(&state).await?;
    let grids: Vec<GridInfo> = names.grids.values().cloned().collect();
    let filter = q.filter(&user, &grids);
    let page = centre::list(&state, filter, IncidentSort::Reported, None, MAX_POINTS).await?;
    let capped = page.next.is_some();
    let records = state
        .store
        .records(page.incidents.iter().map(|i| i.id.clone()).collect())
        .await?;
    let mut located = Vec::new();
    let mut without_location = 0;
    for i in &page.incidents {
        match records.iter().find(|r| r.id == i.id).and_then(|r| gcj02_of(&r.fields)) {
            Some(p) => located.push((i, p)),
            None => without_location += 1,
        }
    }
    // The zoom that fits every point, then the drawing's origin.
    let (mut min_lat, mut max_lat, mut min_lon, mut max_lon) = (90.0f64, -90.0f64, 180.0f64, -180.0f64);
    for (_, (lat, lon)) in &located {
        min_lat = min_lat.min(*lat);
        max_lat = max_lat.max(*lat);
        min_lon = min_lon.min(*lon);
        max_lon = max_lon.max(*lon);
    }
    let zoom = (1..=18u32)
        .rev()
        .find(|z| {
            let (x0, y0) = world_px(max_lat, min_lon, *z);
            let (x1, y1) = world_px(min_lat, max_lon, *z);
            x1 - x0 <= WIDTH - 40.0 && y1 - y0 <= HEIGHT - 40.0
        })
        .unwrap_or(1);
    let (cx, cy) = {
        let (x0, y0) = world_px(max_lat, min_lon, zoom);
        let (x1, y1) = world_px(min_lat, max_lon, zoom);
        ((x0 + x1) / 2.0, (y0 + y1) / 2.0)
    };
    let (ox, oy) = (cx - WIDTH / 2.0, cy - HEIGHT / 2.0);
    let points = located
        .iter()
        .map(|(i, (lat, lon))| {
            let (x, y) = world_px(*lat, *lon, zoom);
            let open = matches!(i.status.as_str(), "reported" | "dispatched" | "accepted" | "returned");
            Point {
                id: i.id.clone(),
                x: format!("{:.1}", x - ox),
                y: format!("{:.1}", y - oy),
                class: if i.overdue {
                    "overdue"
                } else if open {
                    "open"
                } else {
                    "done"
                },
                title: format!(
                    "{} · {} · {}",
                    names.category(&i.category),
                    status_label(&i.status),
                    china_time(i.reported_at_ms)
                ),
            }
        })
        .collect();
    // Without tiles, where is what: each community's name at the middle of
    // its points, and a scale bar.
    let mut places: std::collections::BTreeMap<String, (f64, f64, usize)> = Default::default();
    for (i, (lat, lon)) in &located {
        let Some(g) = names.grids.get(&i.grid_id) else { continue };
        let (x, y) = world_px(*lat, *lon, zoom);
        let e = places.entry(g.community.clone()).or_default();
        *e = (e.0 + x - ox, e.1 + y - oy, e.2 + 1);
    }
    let labels = places
        .into_iter()
        .filter(|(name, _)| !name.is_empty())
        .map(|(name, (x, y, n))| Label {
            x: format!("{:.1}", x / n as f64),
            y: format!("{:.1}", y / n as f64 - 10.0),
            name,
        })
        .collect();
    let scale = scale_bar((min_lat + max_lat) / 2.0, zoom);
    let tiles = match (&state.config.map_tiles, located.is_empty()) {
        (Some(template), false) => {
            let n = 1i64 << zoom;
            let (tx0, ty0) = ((ox / 256.0).floor() as i64, (oy / 256.0).floor() as i64);
            let (tx1, ty1) = (
                ((ox + WIDTH) / 256.0).floor() as i64,
                ((oy + HEIGHT) / 256.0).floor() as i64,
            );
            let mut tiles = Vec::new();
            for ty in ty0.max(0)..=ty1.min(n - 1) {
                for tx in tx0..=tx1 {
                    let wrapped = tx.rem_euclid(n);
                    tiles.push(Tile {
                        href: template
                            .replace("{z}", &zoom.to_string())
                            .replace("{x}", &wrapped.to_string())
                            .replace("{y}", &ty.to_string()),
                        x: format!("{:.1}", tx as f64 * 256.0 - ox),
                        y: format!("{:.1}", ty as f64 * 256.0 - oy),
                    });
                }
            }
            tiles
        }
        _ => Vec::new(),
    };
    let (subs, _) = names.places();
    render(&MapPage {
        chrome: user.chrome("事件地图", "/console/map"),
        sub_districts: subs
            .into_iter()
            .map(|s| super::incidents::Choice {
                selected: s == q.sub_district,
                label: s.clone(),
                value: s,
            })
            .collect(),
        statuses: ["reported", "dispatched", "accepted", "returned", "resolved", "closed"]
            .iter()
            .map(|s| super::incidents::Choice {
                selected: *s == q.status,
                value: (*s).to_owned(),
                label: status_label(s).to_owned(),
            })
            .collect(),
        categories: names
            .catalogue
            .categories
            .iter()
            .map(|c| super::incidents::Choice {
                selected: c.code == q.category,
                value: c.code.clone(),
                label: c.name_zh.clone(),
            })
            .collect(),
        q,
        points,
        tiles,
        labels,
        scale,
        without_location,
        capped,
        width: WIDTH,
        height: HEIGHT,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// (WGS-84 lat, lon) and its GCJ-02 as published with eviltransform.
    const REFERENCE: [(f64, f64, f64, f64); 3] = [
        (31.1774276, 121.5272106, 31.17530398364597, 121.531541859215),
        (22.543847, 113.912316, 22.540796131694766, 113.9171764808363),
        (39.911954, 116.377817, 39.91334545536069, 116.38404722455657),
    ];

    #[test]
    fn wgs84_points_convert_to_the_published_gcj02() {
        for (lat, lon, glat, glon) in REFERENCE {
            let (a, b) = to_gcj02(lat, lon, CoordinateSystem::Wgs84);
            assert!(
                (a - glat).abs() < 1e-8 && (b - glon).abs() < 1e-8,
                "{lat},{lon}: {a},{b}"
            );
        }
    }

    #[test]
    fn other_datums_and_places_outside_china() {
        assert_eq!(to_gcj02(39.9, 116.4, CoordinateSystem::Gcj02), (39.9, 116.4));
        assert_eq!(
            to_gcj02(48.85, 2.35, CoordinateSystem::Wgs84),
            (48.85, 2.35),
            "Paris is not shifted"
        );
        // BD-09 of a GCJ-02 point (Baidu's published offset) comes back
        // within a metre.
        let (glat, glon): (f64, f64) = (39.91334545536069, 116.38404722455657);
        let x_pi = std::f64::consts::PI * 3000.0 / 180.0;
        let z = (glon * glon + glat * glat).sqrt() + 0.000_02 * (glat * x_pi).sin();
        let theta = glat.atan2(glon) + 0.000_003 * (glon * x_pi).cos();
        let (blat, blon) = (z * theta.sin() + 0.006, z * theta.cos() + 0.0065);
        let (a, b) = to_gcj02(blat, blon, CoordinateSystem::Bd09);
        assert!((a - glat).abs() < 1e-5 && (b - glon).abs() < 1e-5, "{a},{b}");
    }

    #[test]
    fn the_scale_bar_is_a_round_distance() {
        // Zoom 15 at 37.5°N: about 3.8 m a pixel, so 120 px is ~455 m.
        let (px, label) = scale_bar(37.5, 15);
        assert_eq!(label, "200 米");
        let px: f64 = px.parse().unwrap();
        assert!((50.0..=120.0).contains(&px), "{px}");
        assert_eq!(scale_bar(37.5, 8).1, "50 公里");
    }

    #[test]
    fn a_tile_template_gives_its_origin() {
        assert_eq!(
            tile_origin("https://tiles.district.lan:8443/{z}/{x}/{y}.png").as_deref(),
            Some("https://tiles.district.lan:8443")
        );
        assert_eq!(tile_origin("not a url"), None);
    }
}
