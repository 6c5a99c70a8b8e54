//! Metric families and the Prometheus text exposition format, version 0.0.4.
//!
//! The format (Prometheus docs, "Exposition formats", "Text-based format"):
//! per family one `# HELP name text` line (backslash and line feed escaped
//! as `\\` and `\n`), one `# TYPE name counter|gauge|histogram` line, then
//! its samples `name{label="value",...} value`, all lines of one family
//! together. Label values escape backslash, double quote and line feed
//! (`\\`, `\"`, `\n`). A histogram `x` is the samples `x_bucket{le="B"}`
//! (cumulative counts, ascending bounds, ending with `le="+Inf"`), `x_sum`
//! and `x_count` (equal to the `+Inf` bucket). Values are Go
//! `ParseFloat` syntax (`+Inf`, `-Inf`, `NaN` spelled so).
//!
//! Counter names end in `_total` (the Prometheus naming convention; the
//! family carries the same name, as client_golang writes it).

use std::fmt::Write;

/// A metric family's type (`# TYPE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Only goes up (restarts at 0 with the process).
    Counter,
    /// Goes up and down.
    Gauge,
    /// Observations in buckets, with their sum and count.
    Histogram,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Counter => "counter",
            Kind::Gauge => "gauge",
            Kind::Histogram => "histogram",
        }
    }
}

/// One histogram's observations, as the producer keeps them: `counts[i]`
/// observations fell in `(bounds[i-1], bounds[i]]`, and
/// `counts[bounds.len()]` above the last bound. The encoder makes the
/// buckets cumulative.
#[derive(Debug, Clone, Copy)]
pub struct Histogram<'a> {
    /// Upper bounds, ascending (without `+Inf`).
    pub bounds: &'a [f64],
    /// Non-cumulative counts: one per bound plus one for `+Inf`.
    pub counts: &'a [u64],
    /// Sum of the observed values.
    pub sum: f64,
}

#[derive(Debug, Clone)]
enum Value {
    Int(u64),
    Float(f64),
    Hist {
        /// (bound, cumulative count), ascending, without `+Inf`.
        buckets: Vec<(f64, u64)>,
        count: u64,
        sum: f64,
    },
}

#[derive(Debug, Clone)]
struct Sample {
    labels: Vec<(String, String)>,
    value: Value,
}

#[derive(Debug, Clone)]
struct Family {
    name: String,
    help: String,
    kind: Kind,
    samples: Vec<Sample>,
}

/// The metrics of one scrape: families in the order first added, each with
/// its samples. Collectors add to it; [`MetricSet::encode`] writes it out.
/// Adding a sample to a family that exists appends to it, so several
/// collectors (one per device, say) can share a family.
#[derive(Debug, Default, Clone)]
pub struct MetricSet {
    families: Vec<Family>,
}

/// Whether `s` is a valid metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`).
pub fn valid_metric_name(s: &str) -> bool {
    let mut b = s.bytes();
    b.next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_' || c == b':')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_' || c == b':')
}

/// Whether `s` is a valid label name (`[a-zA-Z_][a-zA-Z0-9_]*`, not
/// starting with the reserved `__`).
pub fn valid_label_name(s: &str) -> bool {
    let mut b = s.bytes();
    !s.starts_with("__")
        && b.next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == b'_')
        && b.all(|c| c.is_ascii_alphanumeric() || c == b'_')
}

impl MetricSet {
    /// An empty set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of families.
    pub fn len(&self) -> usize {
        self.families.len()
    }

    /// Whether no family was added.
    pub fn is_empty(&self) -> bool {
        self.families.is_empty()
    }

    /// The family `name`, created with `help` and `kind` if new. A name
    /// that is not a valid metric name, or an existing family of another
    /// kind, is a bug in the caller: the sample is dropped (`None`) rather
    /// than writing a scrape Prometheus would reject.
    fn family(&mut self, name: &str, help: &str, kind: Kind) -> Option<&mut Family> {
        let counter_ok = kind != Kind::Counter || name.ends_with("_total");
        debug_assert!(
            valid_metric_name(name) && counter_ok,
            "metric name {name:?}"
        );
        if !valid_metric_name(name) || !counter_ok {
            return None;
        }
        let i = match self.families.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                self.families.push(Family {
                    name: name.to_owned(),
                    help: help.to_owned(),
                    kind,
                    samples: Vec::new(),
                });
                self.families.len() - 1
            }
        };
        let f = &mut self.families[i];
        debug_assert_eq!(f.kind, kind, "family {name} added as two kinds");
        (f.kind == kind).then_some(f)
    }

    fn push(&mut self, name: &str, help: &str, kind: Kind, labels: &[(&str, &str)], value: Value) {
        debug_assert!(
            labels
                .iter()
                .all(|(k, _)| valid_label_name(k) && *k != "le"),
            "labels of {name}: {labels:?}"
        );
        if labels
            .iter()
            .any(|(k, _)| !valid_label_name(k) || *k == "le")
        {
            return;
        }
        if let Some(f) = self.family(name, help, kind) {
            f.samples.push(Sample {
                labels: labels
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                    .collect(),
                value,
            });
        }
    }

    /// Adds a counter sample (`name` ends in `_total`).
    pub fn counter(&mut self, name: &str, help: &str, labels: &[(&str, &str)], v: u64) {
        self.push(name, help, Kind::Counter, labels, Value::Int(v));
    }

    /// Adds a counter sample with a fractional value (seconds, say).
    pub fn counter_f64(&mut self, name: &str, help: &str, labels: &[(&str, &str)], v: f64) {
        self.push(name, help, Kind::Counter, labels, Value::Float(v));
    }

    /// Adds an integer gauge sample.
    pub fn gauge(&mut self, name: &str, help: &str, labels: &[(&str, &str)], v: u64) {
        self.push(name, help, Kind::Gauge, labels, Value::Int(v));
    }

    /// Adds a gauge sample.
    pub fn gauge_f64(&mut self, name: &str, help: &str, labels: &[(&str, &str)], v: f64) {
        self.push(name, help, Kind::Gauge, labels, Value::Float(v));
    }

    /// Adds a histogram. Counts beyond `bounds.len() + 1` are ignored,
    /// missing ones are zero; bounds must ascend (else the histogram is
    /// dropped).
    pub fn histogram(&mut self, name: &str, help: &str, labels: &[(&str, &str)], h: &Histogram) {
        let ascending = h.bounds.windows(2).all(|w| w[0] < w[1]);
        debug_assert!(ascending, "bounds of {name}");
        if !ascending || h.bounds.iter().any(|b| !b.is_finite()) {
            return;
        }
        let mut acc = 0u64;
        let mut buckets = Vec::with_capacity(h.bounds.len());
        for (i, b) in h.bounds.iter().enumerate() {
            acc = acc.saturating_add(h.counts.get(i).copied().unwrap_or(0));
            buckets.push((*b, acc));
        }
        acc = acc.saturating_add(h.counts.get(h.bounds.len()).copied().unwrap_or(0));
        let v = Value::Hist {
            buckets,
            count: acc,
            sum: h.sum,
        };
        self.push(name, help, Kind::Histogram, labels, v);
    }

    /// Appends `other`'s families: samples of a family both have join
    /// this set's (a family of another kind is dropped).
    pub fn merge(&mut self, other: MetricSet) {
        for f in other.families {
            match self.families.iter_mut().find(|g| g.name == f.name) {
                Some(g) if g.kind == f.kind => g.samples.extend(f.samples),
                Some(_) => {}
                None => self.families.push(f),
            }
        }
    }

    /// The set in the text format.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(256 * self.families.len());
        for f in &self.families {
            // Writing to a String cannot fail.
            let _ = writeln!(out, "# HELP {} {}", f.name, escape_help(&f.help));
            let _ = writeln!(out, "# TYPE {} {}", f.name, f.kind.name());
            for s in &f.samples {
                match &s.value {
                    Value::Int(v) => line(&mut out, &f.name, "", &s.labels, None, &v.to_string()),
                    Value::Float(v) => line(&mut out, &f.name, "", &s.labels, None, &float(*v)),
                    Value::Hist {
                        buckets,
                        count,
                        sum,
                    } => {
                        for (b, c) in buckets {
                            let le = float(*b);
                            line(
                                &mut out,
                                &f.name,
                                "_bucket",
                                &s.labels,
                                Some(&le),
                                &c.to_string(),
                            );
                        }
                        let n = count.to_string();
                        line(&mut out, &f.name, "_bucket", &s.labels, Some("+Inf"), &n);
                        line(&mut out, &f.name, "_sum", &s.labels, None, &float(*sum));
                        line(&mut out, &f.name, "_count", &s.labels, None, &n);
                    }
                }
            }
        }
        out
    }
}

/// One sample line: `name{labels[,le="le"]} value`.
fn line(
    out: &mut String,
    name: &str,
    suffix: &str,
    labels: &[(String, String)],
    le: Option<&str>,
    value: &str,
) {
    out.push_str(name);
    out.push_str(suffix);
    if !labels.is_empty() || le.is_some() {
        out.push('{');
        let mut first = true;
        let all = labels
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .chain(le.map(|l| ("le", l)));
        for (k, v) in all {
            if !first {
                out.push(',');
            }
            first = false;
            out.push_str(k);
            out.push_str("=\"");
            escape_label_into(out, v);
            out.push('"');
        }
        out.push('}');
    }
    out.push(' ');
    out.push_str(value);
    out.push('\n');
}

/// Escapes a label value: `\` → `\\`, `"` → `\"`, line feed → `\n`.
pub fn escape_label_into(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// Escapes HELP text: `\` → `\\`, line feed → `\n` (quotes stay).
pub fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

/// A float as Go's `ParseFloat` reads it: `+Inf`, `-Inf`, `NaN`, plain
/// decimals for ordinary magnitudes, exponent form for the very small or
/// large (Rust's `Display` would write 300 digits for 1e300).
pub fn float(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else if v == 0.0 || (1e-5..1e15).contains(&v.abs()) {
        format!("{v}")
    } else {
        format!("{v:e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counter_and_gauge_lines() {
        let mut m = MetricSet::new();
        m.counter("x_total", "Things.", &[("port", "1")], 42);
        m.counter("x_total", "Things.", &[("port", "2")], 7);
        m.gauge("g", "A gauge.", &[], 3);
        m.gauge_f64("h", "Half.", &[], 0.5);
        assert_eq!(
            m.encode(),
            "# HELP x_total Things.\n# TYPE x_total counter\nx_total{port=\"1\"} 42\n\
             x_total{port=\"2\"} 7\n# HELP g A gauge.\n# TYPE g gauge\ng 3\n\
             # HELP h Half.\n# TYPE h gauge\nh 0.5\n"
        );
    }

    #[test]
    fn label_values_and_help_are_escaped() {
        let mut m = MetricSet::new();
        m.gauge(
            "g",
            "Line one\nback\\slash \"quoted\"",
            &[("name", "a\"b\\c\nd")],
            1,
        );
        let t = m.encode();
        assert!(
            t.contains("# HELP g Line one\\nback\\\\slash \"quoted\"\n"),
            "{t}"
        );
        assert!(t.contains("g{name=\"a\\\"b\\\\c\\nd\"} 1\n"), "{t}");
        // No raw line feed inside a sample line: 3 lines only.
        assert_eq!(t.lines().count(), 3);
    }

    #[test]
    fn histogram_buckets_are_cumulative_and_end_with_inf() {
        let mut m = MetricSet::new();
        let bounds = [0.001, 0.002, 0.004];
        m.histogram(
            "lat_seconds",
            "Latency.",
            &[("op", "read")],
            &Histogram {
                bounds: &bounds,
                counts: &[1, 0, 5, 2],
                sum: 0.0255,
            },
        );
        assert_eq!(
            m.encode(),
            "# HELP lat_seconds Latency.\n# TYPE lat_seconds histogram\n\
             lat_seconds_bucket{op=\"read\",le=\"0.001\"} 1\n\
             lat_seconds_bucket{op=\"read\",le=\"0.002\"} 1\n\
             lat_seconds_bucket{op=\"read\",le=\"0.004\"} 6\n\
             lat_seconds_bucket{op=\"read\",le=\"+Inf\"} 8\n\
             lat_seconds_sum{op=\"read\"} 0.0255\n\
             lat_seconds_count{op=\"read\"} 8\n"
        );
    }

    #[test]
    fn histogram_missing_counts_are_zero() {
        let mut m = MetricSet::new();
        m.histogram(
            "h",
            "H.",
            &[],
            &Histogram {
                bounds: &[1.0, 2.0],
                counts: &[3],
                sum: 1.0,
            },
        );
        let t = m.encode();
        assert!(
            t.contains("h_bucket{le=\"2\"} 3\nh_bucket{le=\"+Inf\"} 3\n"),
            "{t}"
        );
        assert!(t.contains("h_count 3\n"), "{t}");
    }

    #[test]
    fn floats_in_go_syntax() {
        assert_eq!(float(f64::INFINITY), "+Inf");
        assert_eq!(float(f64::NEG_INFINITY), "-Inf");
        assert_eq!(float(f64::NAN), "NaN");
        assert_eq!(float(0.0), "0");
        assert_eq!(float(0.000016), "0.000016");
        assert_eq!(float(1e300), "1e300");
        assert_eq!(float(2.5e-7), "2.5e-7");
        assert_eq!(float(1.0), "1");
    }

    #[test]
    fn names_are_checked() {
        assert!(valid_metric_name("vswitch_port_rx_packets_total"));
        assert!(valid_metric_name("a:b_c"));
        assert!(!valid_metric_name("1abc"));
        assert!(!valid_metric_name(""));
        assert!(!valid_metric_name("a-b"));
        assert!(valid_label_name("device"));
        assert!(!valid_label_name("__name__"));
        assert!(!valid_label_name("a.b"));
    }

    #[test]
    fn empty_set_encodes_to_nothing() {
        assert_eq!(MetricSet::new().encode(), "");
        assert!(MetricSet::new().is_empty());
    }
}
