//! The READMEs as a new user reads them (issue 17): the top-level README
//! leads with the two commands and what a user does, keeps its status table
//! to one line per part with a headline, and loses no fact (the full rows
//! live in perf/README.md); switch/README.md says how IP fragments are
//! matched, against OVS's default.

fn read(path: &str) -> String {
    std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The `## ` headings, in order.
fn headings(text: &str) -> Vec<&str> {
    text.lines().filter_map(|l| l.strip_prefix("## ")).collect()
}

/// The text of section `## name` (up to the next `## `).
fn section<'a>(text: &'a str, name: &str) -> &'a str {
    let start = text
        .find(&format!("\n## {name}\n"))
        .unwrap_or_else(|| panic!("no section {name:?}"));
    let rest = &text[start + 1..];
    let end = rest[3..].find("\n## ").map_or(rest.len(), |e| e + 3);
    &rest[..end]
}

#[test]
fn readme_leads_with_what_a_user_does() {
    let r = read("README.md");
    let h = headings(&r);
    let pos = |name: &str| {
        h.iter()
            .position(|x| *x == name)
            .unwrap_or_else(|| panic!("no `## {name}` in {h:?}"))
    };
    assert_eq!(pos("The two commands"), 0, "{h:?}");
    assert_eq!(pos("What you do with it"), 1, "{h:?}");
    assert!(pos("Status") < pos("Architecture"), "{h:?}");
    let two = section(&r, "The two commands");
    assert!(two.contains("cargo run --release") && two.contains("bash .ci/test"));
    let uses = section(&r, "What you do with it");
    for (task, shows) in [
        ("### Run the demo", "vswitch demo --switch-only"),
        ("### Attach a VM's disk and NIC", "vhost-user-blk-pci"),
        ("### Add flows", "vswitch flows add"),
        ("### Read counters", "vswitch stats"),
    ] {
        assert!(uses.contains(task), "no {task:?}");
        assert!(uses.contains(shows), "{task}: no {shows:?}");
    }
}

#[test]
fn status_is_one_short_line_per_part_and_the_details_moved() {
    let r = read("README.md");
    let rows: Vec<&str> = section(&r, "Status")
        .lines()
        .filter(|l| l.starts_with('|'))
        .skip(2)
        .collect();
    assert_eq!(rows.len(), 8, "{rows:#?}");
    for row in &rows {
        let cells: Vec<&str> = row.trim_matches('|').split(" | ").collect();
        assert_eq!(cells.len(), 3, "part | state | headline: {row}");
        assert!(
            row.chars().count() <= 260,
            "a status row is a line, not a paragraph ({} chars): {row}",
            row.chars().count()
        );
    }
    // The benchmark minutiae are in perf/README.md, not lost.
    let perf = read("perf/README.md");
    assert!(perf.contains("## Headline results by part"));
    for fact in [
        "2.14 × / 2.17 × at 1 flow/100 / 10k rules",
        "p50 0.52 µs vs OVS 0.60",
        "1.33x (QD 1) and 1.00x (QD 32)",
        "100% hits 97-133x",
        "forged-metadata safety",
    ] {
        assert!(perf.contains(fact), "perf/README.md lost {fact:?}");
        assert!(!r.contains(fact), "README.md still carries {fact:?}");
    }
}

#[test]
fn switch_readme_says_how_fragments_are_matched() {
    let s = read("switch/README.md");
    let rules = section(
        &s,
        "Rule syntax (`vswitch flows add`, config `flows = [...]`)",
    );
    let frag = &rules[rules
        .find("### IP fragments")
        .expect("no fragment section in the rule syntax")..];
    for must in [
        "`normal`",
        "`nx-match`",
        "nw_frag=yes",
        "first fragment",
        "later fragment",
    ] {
        assert!(frag.contains(must), "fragment section lacks {must:?}");
    }
}
