//! Whether a polygon is valid, in time that grows as `n log n` with its vertices.
//!
//! GEOS's `IsValid` (through GDAL) is exact for every OGC rule, but its noder compares every pair
//! of monotone chains whose boxes overlap: on a finely jagged outline (a million vertices in
//! short spikes) nearly all boxes overlap and it takes tens of minutes. Polygons up to
//! [`GEOS_VERTICES`] vertices are checked by GEOS; larger ones here, by a Shamos–Hoey sweep that
//! finds whether any two edges meet other than consecutive edges at their shared vertex (a
//! ring's self-intersection or self-touch, a crossing or overlap of two rings), plus whether each
//! hole lies inside its shell and no shell inside another. Two rings touching at a point are
//! allowed, as OGC allows them. The sweep orders points by (x, y) and compares edges only by
//! orientation, which amounts to an infinitely small rotation: vertical edges need no special
//! case and exact touches stay exact.

use geo::{Coord, Geometry, Polygon};

/// Largest polygon (in vertices) checked by GEOS; larger ones are checked by [`is_valid`]. GEOS
/// then costs well under a millisecond even on a jagged outline (it grows with the square of
/// the vertices there: 0.6 s at 10,000), and it checks what the sweep does not: an interior cut
/// in two by rings that touch at two points.
pub const GEOS_VERTICES: usize = 256;

/// Whether the polygons of `geometry` (a Polygon or MultiPolygon; other kinds are valid here)
/// are valid: no ring meets itself, no two rings cross or overlap, holes lie inside their shell
/// and no shell lies inside another.
pub fn is_valid(geometry: &Geometry<f64>) -> bool {
    let polygons: Vec<&Polygon<f64>> = match geometry {
        Geometry::Polygon(p) => vec![p],
        Geometry::MultiPolygon(mp) => mp.0.iter().collect(),
        _ => return true,
    };
    let mut rings: Vec<Vec<Coord<f64>>> = Vec::new();
    let mut shells = Vec::new();
    for polygon in &polygons {
        shells.push(rings.len());
        for ring in std::iter::once(polygon.exterior()).chain(polygon.interiors()) {
            let mut points = ring.0.clone();
            points.dedup();
            let closed = points.first() == points.last();
            if points.len() < 4 || !closed || points.iter().any(|c| !c.x.is_finite() || !c.y.is_finite()) {
                return false;
            }
            rings.push(points);
        }
    }
    if rings.iter().any(|r| has_repeated_vertex(r)) || edges_meet(&rings) {
        return false;
    }
    // No edges meet: each ring lies wholly inside or outside another, tested by the middle of
    // its first edge (a ring may touch another at a vertex).
    let boxes: Vec<[f64; 4]> = rings.iter().map(|r| bounds(r)).collect();
    let shell_of = |ring: usize| shells.iter().rposition(|&s| s <= ring).unwrap_or(0);
    let inside = |point: Coord<f64>, ring: usize| {
        let [x0, y0, x1, y1] = boxes[ring];
        (x0..=x1).contains(&point.x) && (y0..=y1).contains(&point.y) && contains(&rings[ring], point)
    };
    for (r, ring) in rings.iter().enumerate() {
        let point = Coord {
            x: (ring[0].x + ring[1].x) / 2.0,
            y: (ring[0].y + ring[1].y) / 2.0,
        };
        let polygon = shell_of(r);
        let is_hole = shells[polygon] != r;
        if is_hole && !inside(point, shells[polygon]) {
            return false; // a hole outside its shell
        }
        if is_hole {
            let end = shells.get(polygon + 1).copied().unwrap_or(rings.len());
            if (shells[polygon] + 1..end).any(|h| h != r && inside(point, h)) {
                return false; // a hole inside another hole
            }
            continue;
        }
        for (other, &shell) in shells.iter().enumerate() {
            let end = shells.get(other + 1).copied().unwrap_or(rings.len());
            if other != polygon && inside(point, shell) && !(shell + 1..end).any(|h| inside(point, h)) {
                return false; // a shell inside another polygon
            }
        }
    }
    true
}

/// `[min x, min y, max x, max y]` of `ring`.
fn bounds(ring: &[Coord<f64>]) -> [f64; 4] {
    ring.iter()
        .fold([f64::MAX, f64::MAX, f64::MIN, f64::MIN], |[x0, y0, x1, y1], c| {
            [x0.min(c.x), y0.min(c.y), x1.max(c.x), y1.max(c.y)]
        })
}

/// Whether a ring passes twice through one vertex (a self-touching ring), its closing vertex
/// aside.
fn has_repeated_vertex(ring: &[Coord<f64>]) -> bool {
    let mut keys: Vec<(u64, u64)> = ring[..ring.len() - 1]
        .iter()
        .map(|c| (c.x.to_bits(), c.y.to_bits()))
        .collect();
    keys.sort_unstable();
    keys.windows(2).any(|w| w[0] == w[1])
}

/// Even-odd test of `point` against `ring`.
fn contains(ring: &[Coord<f64>], point: Coord<f64>) -> bool {
    let mut inside = false;
    for w in ring.windows(2) {
        let (a, b) = (w[0], w[1]);
        if (a.y > point.y) != (b.y > point.y) && point.x < a.x + (point.y - a.y) * (b.x - a.x) / (b.y - a.y) {
            inside = !inside;
        }
    }
    inside
}

/// An edge, its lexicographically smaller end (x, then y) first.
#[derive(Clone, Copy)]
struct Edge {
    left: Coord<f64>,
    right: Coord<f64>,
    ring: u32,
    index: u32,
}

/// Whether `a` comes before `b` in the sweep: by x, then y.
fn before(a: Coord<f64>, b: Coord<f64>) -> bool {
    (a.x, a.y) < (b.x, b.y)
}

/// Whether active edge `a` lies below active edge `b` (`ia`, `ib` their numbers): the edge that
/// started later is placed by its start against the other's line (by its end when it starts on
/// it); edges on one line are ordered by number.
fn below(a: &Edge, b: &Edge, ia: u32, ib: u32) -> bool {
    if ia == ib {
        return false;
    }
    let later_above = |earlier: &Edge, later: &Edge| {
        let side = orient(earlier.left, earlier.right, later.left);
        let side = if side == 0.0 {
            orient(earlier.left, earlier.right, later.right)
        } else {
            side
        };
        (side != 0.0).then_some(side > 0.0)
    };
    if before(b.left, a.left) || (a.left == b.left && ia > ib) {
        // `a` started later.
        match later_above(b, a) {
            Some(above) => !above,
            None => ia < ib,
        }
    } else {
        match later_above(a, b) {
            Some(above) => above,
            None => ia < ib,
        }
    }
}

/// Whether two edges of `rings` meet other than consecutive edges of a ring at their shared
/// vertex, or two rings at a single point.
fn edges_meet(rings: &[Vec<Coord<f64>>]) -> bool {
    let mut edges = Vec::new();
    for (r, ring) in rings.iter().enumerate() {
        for (i, w) in ring.windows(2).enumerate() {
            let (left, right) = if before(w[0], w[1]) { (w[0], w[1]) } else { (w[1], w[0]) };
            edges.push(Edge {
                left,
                right,
                ring: r as u32,
                index: i as u32,
            });
        }
    }
    let ring_edges: Vec<u32> = rings.iter().map(|r| (r.len() - 1) as u32).collect();
    // Events: (point, 0 = remove | 1 = insert, edge); at one point every removal comes first.
    let mut events: Vec<(Coord<f64>, u8, u32)> = Vec::with_capacity(edges.len() * 2);
    for (e, edge) in edges.iter().enumerate() {
        events.push((edge.left, 1, e as u32));
        events.push((edge.right, 0, e as u32));
    }
    events.sort_unstable_by(|a, b| {
        (a.0.x, a.0.y, a.1)
            .partial_cmp(&(b.0.x, b.0.y, b.1))
            .unwrap_or(std::cmp::Ordering::Equal)
    });
    let less = |a: u32, b: u32| below(&edges[a as usize], &edges[b as usize], a, b);
    let mut status = Treap::default();
    for &(_, kind, e) in &events {
        let inserting = kind == 1;
        let (lower, upper) = if inserting {
            status.insert(e, &less)
        } else {
            status.remove(e, &less)
        };
        let pairs: &[(Option<u32>, Option<u32>)] = if inserting {
            &[(lower, Some(e)), (Some(e), upper)]
        } else {
            &[(lower, upper)]
        };
        for &(a, b) in pairs {
            if let (Some(a), Some(b)) = (a, b) {
                if meet(&edges[a as usize], &edges[b as usize], &ring_edges) {
                    return true;
                }
            }
        }
    }
    false
}

/// Whether edges `a` and `b` meet in a way a valid polygon does not allow.
fn meet(a: &Edge, b: &Edge, ring_edges: &[u32]) -> bool {
    let (p, q, r, s) = (a.left, a.right, b.left, b.right);
    let (d1, d2) = (orient(r, s, p), orient(r, s, q));
    let (d3, d4) = (orient(p, q, r), orient(p, q, s));
    let crossing = (d1 * d2 < 0.0) && (d3 * d4 < 0.0);
    if crossing {
        return true;
    }
    let collinear = d1 == 0.0 && d2 == 0.0;
    if collinear {
        // Overlap of positive length, or a touch.
        let lo = if before(p, r) { r } else { p };
        let hi = if before(q, s) { q } else { s };
        if before(lo, hi) {
            return true;
        }
    }
    let touches = (d1 == 0.0 && on_span(r, s, p))
        || (d2 == 0.0 && on_span(r, s, q))
        || (d3 == 0.0 && on_span(p, q, r))
        || (d4 == 0.0 && on_span(p, q, s));
    if !touches {
        return false;
    }
    if a.ring != b.ring {
        return false; // two rings touching at a point
    }
    // Consecutive edges of one ring share their vertex: that is no touch.
    let n = ring_edges[a.ring as usize];
    let consecutive = (a.index + 1) % n == b.index || (b.index + 1) % n == a.index;
    !consecutive
}

fn orient(a: Coord<f64>, b: Coord<f64>, c: Coord<f64>) -> f64 {
    (b.x - a.x) * (c.y - a.y) - (b.y - a.y) * (c.x - a.x)
}

/// Whether `p`, collinear with the edge `a`-`b`, lies within its span.
fn on_span(a: Coord<f64>, b: Coord<f64>, p: Coord<f64>) -> bool {
    p.x >= a.x.min(b.x) && p.x <= a.x.max(b.x) && p.y >= a.y.min(b.y) && p.y <= a.y.max(b.y)
}

/// The sweep's status: edges ordered by y at the sweep's x, as a treap (randomised balanced
/// tree) over a comparator that changes with x but keeps the order of edges that do not meet.
#[derive(Default)]
struct Treap {
    nodes: Vec<Node>,
    root: Option<u32>,
    seed: u64,
}

#[derive(Clone, Copy)]
struct Node {
    edge: u32,
    priority: u64,
    left: Option<u32>,
    right: Option<u32>,
}

impl Treap {
    fn priority(&mut self) -> u64 {
        self.seed = self.seed.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.seed;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z ^ (z >> 27)
    }

    /// Splits `tree` into the edges before `edge` and the others (`edge` included).
    fn split(&mut self, tree: Option<u32>, edge: u32, less: &dyn Fn(u32, u32) -> bool) -> (Option<u32>, Option<u32>) {
        let Some(t) = tree else { return (None, None) };
        let node = self.nodes[t as usize];
        if less(node.edge, edge) {
            let (l, r) = self.split(node.right, edge, less);
            self.nodes[t as usize].right = l;
            (Some(t), r)
        } else {
            let (l, r) = self.split(node.left, edge, less);
            self.nodes[t as usize].left = r;
            (l, Some(t))
        }
    }

    fn merge(&mut self, a: Option<u32>, b: Option<u32>) -> Option<u32> {
        match (a, b) {
            (None, b) => b,
            (a, None) => a,
            (Some(x), Some(y)) => {
                if self.nodes[x as usize].priority > self.nodes[y as usize].priority {
                    let right = self.nodes[x as usize].right;
                    self.nodes[x as usize].right = self.merge(right, Some(y));
                    Some(x)
                } else {
                    let left = self.nodes[y as usize].left;
                    self.nodes[y as usize].left = self.merge(Some(x), left);
                    Some(y)
                }
            }
        }
    }

    fn last(&self, mut tree: Option<u32>) -> Option<u32> {
        let mut found = None;
        while let Some(t) = tree {
            found = Some(self.nodes[t as usize].edge);
            tree = self.nodes[t as usize].right;
        }
        found
    }

    fn first(&self, mut tree: Option<u32>) -> Option<u32> {
        let mut found = None;
        while let Some(t) = tree {
            found = Some(self.nodes[t as usize].edge);
            tree = self.nodes[t as usize].left;
        }
        found
    }

    /// Inserts `edge`; returns the edges just below and above it.
    fn insert(&mut self, edge: u32, less: &dyn Fn(u32, u32) -> bool) -> (Option<u32>, Option<u32>) {
        let priority = self.priority();
        let id = self.nodes.len() as u32;
        self.nodes.push(Node {
            edge,
            priority,
            left: None,
            right: None,
        });
        let (below, above) = self.split(self.root, edge, less);
        let neighbours = (self.last(below), self.first(above));
        let with = self.merge(below, Some(id));
        self.root = self.merge(with, above);
        neighbours
    }

    /// Removes `edge`; returns the edges just below and above where it was.
    fn remove(&mut self, edge: u32, less: &dyn Fn(u32, u32) -> bool) -> (Option<u32>, Option<u32>) {
        let (below, rest) = self.split(self.root, edge, less);
        // `rest` starts with `edge`: split it off as the first node.
        let (found, above) = self.split_first(rest);
        debug_assert_eq!(found.map(|n| self.nodes[n as usize].edge), Some(edge));
        let neighbours = (self.last(below), self.first(above));
        self.root = self.merge(below, above);
        neighbours
    }

    /// Splits the first node off `tree`.
    fn split_first(&mut self, tree: Option<u32>) -> (Option<u32>, Option<u32>) {
        let Some(t) = tree else { return (None, None) };
        match self.nodes[t as usize].left {
            None => {
                let right = self.nodes[t as usize].right;
                self.nodes[t as usize].right = None;
                (Some(t), right)
            }
            Some(left) => {
                let (first, rest) = self.split_first(Some(left));
                self.nodes[t as usize].left = rest;
                (first, Some(t))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use geo::LineString;

    fn ring(points: &[(f64, f64)]) -> LineString<f64> {
        LineString::from(points.to_vec())
    }

    fn polygon(shell: &[(f64, f64)], holes: &[&[(f64, f64)]]) -> Geometry<f64> {
        Geometry::Polygon(Polygon::new(ring(shell), holes.iter().map(|h| ring(h)).collect()))
    }

    const SQUARE: [(f64, f64); 5] = [(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0), (0.0, 0.0)];

    #[test]
    fn the_rules_of_valid_polygons() {
        let hole = [(2.0, 2.0), (4.0, 2.0), (4.0, 4.0), (2.0, 4.0), (2.0, 2.0)];
        let touching_hole = [(0.0, 5.0), (3.0, 4.0), (3.0, 6.0), (0.0, 5.0)];
        let inner_hole = [(2.5, 2.5), (3.5, 2.5), (3.5, 3.5), (2.5, 2.5)];
        let outside_hole = [(20.0, 20.0), (24.0, 20.0), (24.0, 24.0), (20.0, 20.0)];
        let crossing_hole = [(8.0, 8.0), (12.0, 8.0), (12.0, 12.0), (8.0, 12.0), (8.0, 8.0)];
        let bow_tie = [(0.0, 0.0), (10.0, 10.0), (10.0, 0.0), (0.0, 10.0), (0.0, 0.0)];
        let self_touch = [
            (0.0, 0.0),
            (10.0, 0.0),
            (5.0, 5.0),
            (10.0, 10.0),
            (0.0, 10.0),
            (5.0, 5.0),
            (0.0, 0.0),
        ];
        let spike = [
            (0.0, 0.0),
            (10.0, 0.0),
            (10.0, 5.0),
            (15.0, 5.0),
            (10.0, 5.0),
            (10.0, 10.0),
            (0.0, 10.0),
            (0.0, 0.0),
        ];
        for (geometry, valid) in [
            (polygon(&SQUARE, &[]), true),
            (polygon(&SQUARE, &[&hole]), true),
            (polygon(&SQUARE, &[&touching_hole]), true),
            (polygon(&SQUARE, &[&hole, &inner_hole]), false),
            (polygon(&SQUARE, &[&outside_hole]), false),
            (polygon(&SQUARE, &[&crossing_hole]), false),
            (polygon(&bow_tie, &[]), false),
            (polygon(&self_touch, &[]), false),
            (polygon(&spike, &[]), false),
        ] {
            assert_eq!(is_valid(&geometry), valid, "{geometry:?}");
        }
        // Two parts: apart, overlapping, one inside the other, one inside the other's hole.
        let part = |x: f64, size: f64| {
            let y = if size < 10.0 { 3.0 } else { 0.0 };
            Polygon::new(
                ring(&[(x, y), (x + size, y), (x + size, y + size), (x, y + size), (x, y)]),
                vec![],
            )
        };
        let with_hole = Polygon::new(
            ring(&SQUARE),
            vec![ring(&[(1.0, 1.0), (9.0, 1.0), (9.0, 9.0), (1.0, 9.0), (1.0, 1.0)])],
        );
        for (parts, valid) in [
            (vec![part(0.0, 10.0), part(20.0, 10.0)], true),
            (vec![part(0.0, 10.0), part(5.0, 10.0)], false),
            (vec![part(0.0, 10.0), part(3.0, 3.0)], false),
            (vec![with_hole, part(3.0, 3.0)], true),
        ] {
            let geometry = Geometry::MultiPolygon(geo::MultiPolygon(parts));
            assert_eq!(is_valid(&geometry), valid, "{geometry:?}");
        }
    }

    #[test]
    fn a_finely_jagged_polygon_is_checked_at_once() {
        let mut next = {
            let mut state = 1u64;
            move || {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (state >> 11) as f64 / (1u64 << 53) as f64
            }
        };
        // GEOS takes about 70 s on this one (quadratic); the sweep a fraction of a second.
        let n = 200_000;
        let mut points: Vec<(f64, f64)> = (0..n)
            .map(|k| {
                let angle = k as f64 / n as f64 * std::f64::consts::TAU;
                let r = 1000.0 * (0.7 + 0.3 * next());
                (r * angle.cos(), r * angle.sin())
            })
            .collect();
        points.push(points[0]);
        let started = std::time::Instant::now();
        assert!(is_valid(&polygon(&points, &[])));
        // Swapping two far vertices makes it cross itself.
        points.swap(10, n / 2);
        assert!(!is_valid(&polygon(&points, &[])));
        eprintln!("two checks of {n} vertices: {:?}", started.elapsed());
    }

    /// Random polygons on a small integer grid (so that touches, overlaps and vertices on edges
    /// are common), each checked here and by GEOS.
    #[test]
    fn agrees_with_geos_on_random_polygons_on_a_grid() {
        let mut state = 42u64;
        let mut next = move |n: u64| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((state >> 33) % n) as f64
        };
        let random_ring = |next: &mut dyn FnMut(u64) -> f64, x0: f64, y0: f64, size: u64| {
            let n = 3 + next(4) as usize;
            let mut points: Vec<(f64, f64)> = (0..n).map(|_| (x0 + next(size), y0 + next(size))).collect();
            points.push(points[0]);
            points
        };
        let rectangle = |x: f64, y: f64, w: f64, h: f64| vec![(x, y), (x + w, y), (x + w, y + h), (x, y + h), (x, y)];
        let (mut checked, mut invalid) = (0, 0);
        for case in 0..4000 {
            let geometry = match case % 4 {
                0 => polygon(&random_ring(&mut next, 0.0, 0.0, 6), &[]),
                1 => {
                    let holes: Vec<Vec<(f64, f64)>> = (0..1 + next(2) as usize)
                        .map(|_| rectangle(next(8), next(8), 1.0 + next(4), 1.0 + next(4)))
                        .collect();
                    let holes: Vec<&[(f64, f64)]> = holes.iter().map(|h| h.as_slice()).collect();
                    polygon(&rectangle(0.0, 0.0, 10.0, 10.0), &holes)
                }
                2 => {
                    let hole = random_ring(&mut next, 1.0, 1.0, 8);
                    polygon(&rectangle(0.0, 0.0, 10.0, 10.0), &[&hole])
                }
                _ => Geometry::MultiPolygon(geo::MultiPolygon(
                    (0..2 + next(2) as usize)
                        .map(|_| Polygon::new(ring(&rectangle(next(8), next(8), 1.0 + next(5), 1.0 + next(5))), vec![]))
                        .collect(),
                )),
            };
            let wkt = wkt_of(&geometry);
            let geos = gdal::vector::Geometry::from_wkt(&wkt).unwrap().is_valid();
            assert_eq!(is_valid(&geometry), geos, "{wkt}");
            checked += 1;
            invalid += usize::from(!geos);
        }
        eprintln!("{checked} polygons, {invalid} invalid by GEOS: the same answers");
        assert!(invalid > checked / 5 && invalid < checked * 4 / 5);
    }

    fn wkt_of(geometry: &Geometry<f64>) -> String {
        let ring = |r: &LineString<f64>| {
            format!(
                "({})",
                r.0.iter()
                    .map(|c| format!("{} {}", c.x, c.y))
                    .collect::<Vec<_>>()
                    .join(",")
            )
        };
        let polygon = |p: &Polygon<f64>| {
            format!(
                "({})",
                std::iter::once(p.exterior())
                    .chain(p.interiors())
                    .map(ring)
                    .collect::<Vec<_>>()
                    .join(",")
            )
        };
        match geometry {
            Geometry::Polygon(p) => format!("POLYGON {}", polygon(p)),
            Geometry::MultiPolygon(mp) => {
                format!(
                    "MULTIPOLYGON ({})",
                    mp.0.iter().map(polygon).collect::<Vec<_>>().join(",")
                )
            }
            _ => unreachable!(),
        }
    }
}
