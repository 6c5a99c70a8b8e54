//! Benchmark reports: a human table and one JSON line per benchmark.

use serde::Serialize;

/// The median of a set of samples (0 for none).
pub fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.total_cmp(b));
    let m = s.len() / 2;
    if s.len() % 2 == 1 {
        s[m]
    } else {
        (s[m - 1] + s[m]) / 2.0
    }
}

/// Median, quartiles and range of a sample: what a reader needs to see
/// whether figures taken in turns agree (a bimodal set shows quartiles
/// far apart).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Spread {
    /// The median.
    pub median: f64,
    /// First quartile (nearest rank).
    pub q1: f64,
    /// Third quartile (nearest rank).
    pub q3: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// How many values.
    pub n: usize,
}

impl Spread {
    /// Of the finite values of `v`; `None` when there are none.
    pub fn of(v: &[f64]) -> Option<Spread> {
        let mut s: Vec<f64> = v.iter().copied().filter(|x| x.is_finite()).collect();
        if s.is_empty() {
            return None;
        }
        s.sort_by(f64::total_cmp);
        let rank = |q: f64| s[((s.len() - 1) as f64 * q).round() as usize];
        Some(Spread {
            median: median(&s),
            q1: rank(0.25),
            q3: rank(0.75),
            min: s[0],
            max: s[s.len() - 1],
            n: s.len(),
        })
    }
}

/// The steady-state part of per-second rate samples: the seconds before
/// traffic started (zeros; large pcaps take a while to preload) and then
/// the warm-up sample (a partial first second, when more than two remain)
/// dropped, at most `keep` kept (a run may last longer than asked, for its
/// start-up: every program gets as many seconds as the others).
pub fn steady_samples(mut samples: Vec<f64>, keep: usize) -> Vec<f64> {
    let first = samples
        .iter()
        .position(|&s| s > 0.0)
        .unwrap_or(samples.len());
    samples.drain(..first);
    if samples.len() > 2 {
        samples.remove(0);
    }
    samples.truncate(keep);
    samples
}

/// Prints rows as an aligned table under `title`.
pub fn table(title: &str, header: &[&str], rows: &[Vec<String>]) {
    let cols = header.len();
    let mut w: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate().take(cols) {
            w[i] = w[i].max(c.len());
        }
    }
    println!("\n== {title}");
    let line = |cells: Vec<&str>| {
        let s: Vec<String> = cells
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{:<width$}", c, width = w[i]))
            .collect();
        println!("  {}", s.join("  "));
    };
    line(header.to_vec());
    line(
        w.iter()
            .map(|n| "-".repeat(*n))
            .collect::<Vec<_>>()
            .iter()
            .map(|s| s.as_str())
            .collect(),
    );
    for r in rows {
        line(r.iter().map(|s| s.as_str()).collect());
    }
}

/// Prints one JSON line `{"benchmark": name, ...value}`.
pub fn json_line<T: Serialize>(name: &str, value: &T) {
    let mut v = serde_json::to_value(value).unwrap_or(serde_json::Value::Null);
    if let serde_json::Value::Object(m) = &mut v {
        m.insert("benchmark".into(), serde_json::Value::String(name.into()));
    }
    println!("{v}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steady_samples_drop_start_up_and_warm_up() {
        assert_eq!(
            steady_samples(vec![0.0, 0.0, 1.0, 5.0, 6.0, 7.0, 8.0], 3),
            vec![5.0, 6.0, 7.0]
        );
        assert_eq!(steady_samples(vec![0.0, 2.0, 3.0], 5), vec![2.0, 3.0]);
        assert!(steady_samples(vec![0.0; 4], 2).is_empty());
    }

    #[test]
    fn spreads() {
        assert_eq!(Spread::of(&[]), None);
        assert_eq!(Spread::of(&[f64::NAN]), None);
        let s = Spread::of(&[5.0, 1.0, 4.0, 2.0, 3.0, f64::INFINITY]).unwrap();
        assert_eq!(
            (s.median, s.q1, s.q3, s.min, s.max, s.n),
            (3.0, 2.0, 4.0, 1.0, 5.0, 5)
        );
        let b = Spread::of(&[8.0, 8.5, 15.0, 15.5]).unwrap();
        assert_eq!((b.median, b.q1, b.q3), (11.75, 8.5, 15.0));
    }

    #[test]
    fn medians() {
        assert_eq!(median(&[]), 0.0);
        assert_eq!(median(&[3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), 2.5);
    }
}
