//! The help text of every `vswitch` subcommand, as users read it: no
//! argument's description names a default that differs from the default
//! clap applies (issue 17: `accel vf create --vectors` said "(default 1)
//! [default: 0]").

use std::process::Command;

fn help(path: &[String]) -> String {
    let o = Command::new(env!("CARGO_BIN_EXE_vswitch"))
        .args(path)
        .arg("--help")
        .output()
        .expect("run vswitch");
    assert!(
        o.status.success(),
        "vswitch {path:?} --help: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// The subcommands a help text lists (without `help`).
fn subcommands(text: &str) -> Vec<String> {
    text.lines()
        .skip_while(|l| l.trim() != "Commands:")
        .skip(1)
        .take_while(|l| !l.trim().is_empty())
        .filter(|l| l.starts_with("  ") && !l.starts_with("    "))
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| *n != "help")
        .map(str::to_owned)
        .collect()
}

/// Each argument's entry (its flag line and description) of a help text.
fn entries(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut in_args = false;
    for l in text.lines() {
        if l == "Options:" || l == "Arguments:" {
            in_args = true;
            continue;
        }
        if !l.starts_with(' ') && !l.is_empty() {
            in_args = false;
        }
        if !in_args {
            continue;
        }
        let t = l.trim_start();
        let indent = l.len() - t.len();
        if (2..=6).contains(&indent)
            && (t.starts_with('-') || t.starts_with('<') || t.starts_with('['))
        {
            out.push(t.to_owned());
        } else if let Some(e) = out.last_mut() {
            e.push(' ');
            e.push_str(t);
        }
    }
    out
}

/// The value after `marker` up to one of `ends`.
fn value_after<'a>(s: &'a str, marker: &str, ends: &[char]) -> Option<&'a str> {
    let rest = &s[s.find(marker)? + marker.len()..];
    let rest = rest.trim_start_matches(':').trim_start();
    Some(rest[..rest.find(ends).unwrap_or(rest.len())].trim())
}

/// The "(default X)" a description names and the "[default: Y]" clap shows.
fn defaults(entry: &str) -> (Option<&str>, Option<&str>) {
    (
        value_after(entry, "(default", &[')', ',', ';', ' ']),
        value_after(entry, "[default:", &[']']),
    )
}

fn walk(path: Vec<String>, seen: &mut Vec<String>, bad: &mut Vec<String>) {
    let text = help(&path);
    for e in entries(&text) {
        if let (Some(said), Some(applied)) = defaults(&e) {
            if said != applied {
                bad.push(format!("vswitch {}: {e}", path.join(" ")));
            }
        }
    }
    seen.push(path.join(" "));
    for sub in subcommands(&text) {
        let mut p = path.clone();
        p.push(sub);
        walk(p, seen, bad);
    }
}

#[test]
fn accel_vf_create_help_states_the_vectors_default_once() {
    let text = help(&["accel".into(), "vf".into(), "create".into()]);
    let e = entries(&text)
        .into_iter()
        .find(|e| e.starts_with("--vectors"))
        .unwrap_or_else(|| panic!("no --vectors in:\n{text}"));
    assert_eq!(defaults(&e), (None, Some("1")), "{e}");
    assert!(e.contains("Interrupt vectors"), "{e}");
}

#[test]
fn no_help_text_contradicts_its_default() {
    // The checker itself: it catches the text issue 17 found.
    let e = "--vectors <VECTORS>  Interrupt vectors (default 1) [default: 0]";
    assert_eq!(defaults(e), (Some("1"), Some("0")));
    let (mut seen, mut bad) = (Vec::new(), Vec::new());
    walk(Vec::new(), &mut seen, &mut bad);
    // Every subcommand was reached, down to the leaves.
    for p in [
        "run",
        "accel vf create",
        "blk serve",
        "iscsi bench",
        "flows add",
        "demo",
    ] {
        assert!(seen.iter().any(|s| s == p), "{p} not walked: {seen:?}");
    }
    assert!(
        bad.is_empty(),
        "help contradicts the default:\n{}",
        bad.join("\n")
    );
}
