//! RFC 7047 §5.1 values: atoms, sets and maps, their conversion to plain Rust
//! types and back.
//!
//! Reading is lenient where the RFC allows a choice: §5.1 lets a `<set>` of
//! exactly one element be written as that `<atom>` alone, and ovsdb-server
//! does so, so every reader accepts both forms. Writing uses the explicit
//! `["set", ...]` / `["map", ...]` forms except for a single atom.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::{json, Value};

use crate::Error;

/// A row's UUID as OVSDB prints it: 36 characters, `8-4-4-4-12` lowercase hex.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Uuid(String);

impl Uuid {
    /// Checks the `<uuid>` grammar of §5.1 (case is folded to lowercase).
    pub fn parse(s: &str) -> Result<Uuid, Error> {
        let ok = s.len() == 36
            && s.char_indices().all(|(i, c)| match i {
                8 | 13 | 18 | 23 => c == '-',
                _ => c.is_ascii_hexdigit(),
            });
        if !ok {
            return Err(Error::Datum(format!("{s:?} is not a UUID")));
        }
        Ok(Uuid(s.to_ascii_lowercase()))
    }

    /// The UUID's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// `["uuid", "..."]`.
    pub fn to_json(&self) -> Value {
        json!(["uuid", self.0])
    }
}

impl fmt::Display for Uuid {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// One atomic value (§5.1 `<atom>`).
#[derive(Debug, Clone, PartialEq)]
pub enum Atom {
    /// `<integer>`: a JSON number without fraction.
    Integer(i64),
    /// `<real>`: any other JSON number.
    Real(f64),
    /// `<boolean>`.
    Boolean(bool),
    /// `<string>`.
    String(String),
    /// `<uuid>`: `["uuid", "..."]`.
    Uuid(Uuid),
    /// `<named-uuid>`: `["named-uuid", "<id>"]`, a row inserted in the same transaction.
    NamedUuid(String),
}

impl Atom {
    /// Parses one atom; arrays other than `uuid`/`named-uuid` are an error.
    pub fn parse(v: &Value) -> Result<Atom, Error> {
        match v {
            Value::Bool(b) => Ok(Atom::Boolean(*b)),
            Value::String(s) => Ok(Atom::String(s.clone())),
            Value::Number(n) => match n.as_i64() {
                Some(i) => Ok(Atom::Integer(i)),
                None => n
                    .as_f64()
                    .map(Atom::Real)
                    .ok_or_else(|| Error::Datum(format!("number out of range: {n}"))),
            },
            Value::Array(a) => match (a.first().and_then(Value::as_str), a.get(1), a.len()) {
                (Some("uuid"), Some(Value::String(u)), 2) => Ok(Atom::Uuid(Uuid::parse(u)?)),
                (Some("named-uuid"), Some(Value::String(n)), 2) => Ok(Atom::NamedUuid(n.clone())),
                _ => Err(Error::Datum(format!("not an atom: {v}"))),
            },
            _ => Err(Error::Datum(format!("not an atom: {v}"))),
        }
    }

    /// The atom as JSON.
    pub fn to_json(&self) -> Value {
        match self {
            Atom::Integer(i) => json!(i),
            Atom::Real(r) => json!(r),
            Atom::Boolean(b) => json!(b),
            Atom::String(s) => json!(s),
            Atom::Uuid(u) => u.to_json(),
            Atom::NamedUuid(n) => json!(["named-uuid", n]),
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Atom::Integer(_) => "integer",
            Atom::Real(_) => "real",
            Atom::Boolean(_) => "boolean",
            Atom::String(_) => "string",
            Atom::Uuid(_) => "uuid",
            Atom::NamedUuid(_) => "named-uuid",
        }
    }

    /// The string, or an error naming what it is instead.
    pub fn into_string(self) -> Result<String, Error> {
        match self {
            Atom::String(s) => Ok(s),
            other => Err(Error::Datum(format!(
                "expected a string, got {}",
                other.kind()
            ))),
        }
    }

    /// The integer, or an error.
    pub fn as_i64(&self) -> Result<i64, Error> {
        match self {
            Atom::Integer(i) => Ok(*i),
            other => Err(Error::Datum(format!(
                "expected an integer, got {}",
                other.kind()
            ))),
        }
    }

    /// The boolean, or an error.
    pub fn as_bool(&self) -> Result<bool, Error> {
        match self {
            Atom::Boolean(b) => Ok(*b),
            other => Err(Error::Datum(format!(
                "expected a boolean, got {}",
                other.kind()
            ))),
        }
    }

    /// The UUID, or an error.
    pub fn into_uuid(self) -> Result<Uuid, Error> {
        match self {
            Atom::Uuid(u) => Ok(u),
            other => Err(Error::Datum(format!(
                "expected a uuid, got {}",
                other.kind()
            ))),
        }
    }
}

/// A column value (§5.1 `<value>`): a set of atoms (one atom alone is a
/// set of one) or a map of atom pairs.
#[derive(Debug, Clone, PartialEq)]
pub enum Datum {
    /// `["set", [...]]`, or a bare atom.
    Set(Vec<Atom>),
    /// `["map", [[k, v], ...]]`.
    Map(Vec<(Atom, Atom)>),
}

impl Datum {
    /// Parses a value in any of the forms §5.1 allows.
    pub fn parse(v: &Value) -> Result<Datum, Error> {
        if let Value::Array(a) = v {
            match (a.first().and_then(Value::as_str), a.get(1), a.len()) {
                (Some("set"), Some(Value::Array(items)), 2) => {
                    return items
                        .iter()
                        .map(Atom::parse)
                        .collect::<Result<_, _>>()
                        .map(Datum::Set);
                }
                (Some("map"), Some(Value::Array(pairs)), 2) => {
                    return pairs
                        .iter()
                        .map(|p| match p.as_array().map(Vec::as_slice) {
                            Some([k, v]) => Ok((Atom::parse(k)?, Atom::parse(v)?)),
                            _ => Err(Error::Datum(format!("map entry is not a pair: {p}"))),
                        })
                        .collect::<Result<_, _>>()
                        .map(Datum::Map);
                }
                _ => {}
            }
        }
        Ok(Datum::Set(vec![Atom::parse(v)?]))
    }

    /// The value as JSON; a set of exactly one atom is written as the atom.
    pub fn to_json(&self) -> Value {
        match self {
            Datum::Set(s) if s.len() == 1 => s[0].to_json(),
            Datum::Set(s) => json!(["set", s.iter().map(Atom::to_json).collect::<Vec<_>>()]),
            Datum::Map(m) => json!([
                "map",
                m.iter()
                    .map(|(k, v)| json!([k.to_json(), v.to_json()]))
                    .collect::<Vec<_>>()
            ]),
        }
    }

    fn into_set(self) -> Result<Vec<Atom>, Error> {
        match self {
            Datum::Set(s) => Ok(s),
            // An empty map and an empty set look alike to a reader that does
            // not know the column type; accept it.
            Datum::Map(m) if m.is_empty() => Ok(Vec::new()),
            Datum::Map(_) => Err(Error::Datum("expected a set, got a map".into())),
        }
    }

    fn into_pairs(self) -> Result<Vec<(Atom, Atom)>, Error> {
        match self {
            Datum::Map(m) => Ok(m),
            Datum::Set(s) if s.is_empty() => Ok(Vec::new()),
            Datum::Set(_) => Err(Error::Datum("expected a map, got a set".into())),
        }
    }

    fn into_opt(self) -> Result<Option<Atom>, Error> {
        let mut s = self.into_set()?;
        match s.len() {
            0 => Ok(None),
            1 => Ok(s.pop()),
            n => Err(Error::Datum(format!("expected at most one value, got {n}"))),
        }
    }

    fn into_one(self) -> Result<Atom, Error> {
        self.into_opt()?
            .ok_or_else(|| Error::Datum("expected a value, got an empty set".into()))
    }

    // ---- readers: JSON value -> Rust ----

    /// Exactly one string.
    pub fn to_string_value(v: &Value) -> Result<String, Error> {
        Datum::parse(v)?.into_one()?.into_string()
    }

    /// Zero or one string (an optional column).
    pub fn to_opt_string(v: &Value) -> Result<Option<String>, Error> {
        Datum::parse(v)?
            .into_opt()?
            .map(Atom::into_string)
            .transpose()
    }

    /// Exactly one integer.
    pub fn to_i64(v: &Value) -> Result<i64, Error> {
        Datum::parse(v)?.into_one()?.as_i64()
    }

    /// Zero or one integer.
    pub fn to_opt_i64(v: &Value) -> Result<Option<i64>, Error> {
        Datum::parse(v)?.into_opt()?.map(|a| a.as_i64()).transpose()
    }

    /// Exactly one boolean.
    pub fn to_bool(v: &Value) -> Result<bool, Error> {
        Datum::parse(v)?.into_one()?.as_bool()
    }

    /// Zero or one boolean.
    pub fn to_opt_bool(v: &Value) -> Result<Option<bool>, Error> {
        Datum::parse(v)?
            .into_opt()?
            .map(|a| a.as_bool())
            .transpose()
    }

    /// A set of strings.
    pub fn to_strings(v: &Value) -> Result<Vec<String>, Error> {
        Datum::parse(v)?
            .into_set()?
            .into_iter()
            .map(Atom::into_string)
            .collect()
    }

    /// A set of UUIDs (references to other rows).
    pub fn to_uuids(v: &Value) -> Result<Vec<Uuid>, Error> {
        Datum::parse(v)?
            .into_set()?
            .into_iter()
            .map(Atom::into_uuid)
            .collect()
    }

    /// Exactly one UUID.
    pub fn to_uuid(v: &Value) -> Result<Uuid, Error> {
        Datum::parse(v)?.into_one()?.into_uuid()
    }

    /// A string-to-string map (`other_config`, `options`, `status`, ...).
    pub fn to_string_map(v: &Value) -> Result<BTreeMap<String, String>, Error> {
        Datum::parse(v)?
            .into_pairs()?
            .into_iter()
            .map(|(k, v)| Ok((k.into_string()?, v.into_string()?)))
            .collect()
    }

    /// A string-to-integer map (`statistics`).
    pub fn to_int_map(v: &Value) -> Result<BTreeMap<String, i64>, Error> {
        Datum::parse(v)?
            .into_pairs()?
            .into_iter()
            .map(|(k, v)| Ok((k.into_string()?, v.as_i64()?)))
            .collect()
    }

    // ---- encoders: Rust -> JSON value ----

    /// A string.
    pub fn string(s: &str) -> Value {
        json!(s)
    }

    /// An optional string: the atom, or the empty set.
    pub fn opt_string(s: Option<&str>) -> Value {
        match s {
            Some(s) => json!(s),
            None => json!(["set", []]),
        }
    }

    /// An optional integer: the atom, or the empty set.
    pub fn opt_i64(i: Option<i64>) -> Value {
        match i {
            Some(i) => json!(i),
            None => json!(["set", []]),
        }
    }

    /// A set of strings.
    pub fn strings<S: AsRef<str>>(items: &[S]) -> Value {
        Datum::Set(
            items
                .iter()
                .map(|s| Atom::String(s.as_ref().to_string()))
                .collect(),
        )
        .to_json()
    }

    /// A string-to-string map.
    pub fn string_map(m: &BTreeMap<String, String>) -> Value {
        Datum::Map(
            m.iter()
                .map(|(k, v)| (Atom::String(k.clone()), Atom::String(v.clone())))
                .collect(),
        )
        .to_json()
    }

    /// A string-to-integer map.
    pub fn int_map(m: &BTreeMap<String, i64>) -> Value {
        Datum::Map(
            m.iter()
                .map(|(k, v)| (Atom::String(k.clone()), Atom::Integer(*v)))
                .collect(),
        )
        .to_json()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const U1: &str = "0d3b4c1e-5f7a-4b2c-9e8d-1a2b3c4d5e6f";
    const U2: &str = "ffffffff-0000-4000-8000-000000000001";

    #[test]
    fn parse_atoms() {
        assert_eq!(Atom::parse(&json!(5)).unwrap(), Atom::Integer(5));
        assert_eq!(Atom::parse(&json!(-1)).unwrap(), Atom::Integer(-1));
        assert_eq!(Atom::parse(&json!(1.5)).unwrap(), Atom::Real(1.5));
        assert_eq!(Atom::parse(&json!(true)).unwrap(), Atom::Boolean(true));
        assert_eq!(Atom::parse(&json!("x")).unwrap(), Atom::String("x".into()));
        assert_eq!(
            Atom::parse(&json!(["uuid", U1])).unwrap(),
            Atom::Uuid(Uuid::parse(U1).unwrap())
        );
        assert_eq!(
            Atom::parse(&json!(["named-uuid", "row1"])).unwrap(),
            Atom::NamedUuid("row1".into())
        );
        for bad in [
            json!(null),
            json!({}),
            json!(["uuid", "nope"]),
            json!(["uuid"]),
            json!(["set", []]),
            json!(["uuid", U1, 1]),
        ] {
            assert!(matches!(Atom::parse(&bad), Err(Error::Datum(_))), "{bad}");
        }
    }

    #[test]
    fn parse_uuid_forms() {
        assert!(Uuid::parse(U1).is_ok());
        assert_eq!(Uuid::parse(&U1.to_uppercase()).unwrap().as_str(), U1);
        for bad in [
            "",
            "0d3b4c1e5f7a4b2c9e8d1a2b3c4d5e6f",
            "0d3b4c1e-5f7a-4b2c-9e8d-1a2b3c4d5e6g",
        ] {
            assert!(Uuid::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parse_one_element_set_shorthand() {
        // As ovsdb-server sends them: a one-element set is the bare atom.
        assert_eq!(Datum::to_string_value(&json!("br0")).unwrap(), "br0");
        assert_eq!(
            Datum::to_string_value(&json!(["set", ["br0"]])).unwrap(),
            "br0"
        );
        assert_eq!(Datum::to_opt_i64(&json!(["set", []])).unwrap(), None);
        assert_eq!(Datum::to_opt_i64(&json!(7)).unwrap(), Some(7));
        assert_eq!(Datum::to_opt_i64(&json!(["set", [7]])).unwrap(), Some(7));
        assert_eq!(Datum::to_opt_string(&json!(["set", []])).unwrap(), None);
        assert_eq!(
            Datum::to_opt_string(&json!("secure")).unwrap().as_deref(),
            Some("secure")
        );
        assert_eq!(
            Datum::to_uuids(&json!(["uuid", U1])).unwrap(),
            vec![Uuid::parse(U1).unwrap()]
        );
        assert_eq!(
            Datum::to_uuids(&json!(["set", [["uuid", U1], ["uuid", U2]]]))
                .unwrap()
                .len(),
            2
        );
        assert_eq!(Datum::to_uuids(&json!(["set", []])).unwrap(), vec![]);
        assert_eq!(
            Datum::to_strings(&json!(["set", ["OpenFlow10", "OpenFlow13"]])).unwrap(),
            vec!["OpenFlow10", "OpenFlow13"]
        );
        assert!(Datum::to_bool(&json!(true)).unwrap());
        assert_eq!(Datum::to_opt_bool(&json!(["set", []])).unwrap(), None);
        assert_eq!(Datum::to_i64(&json!(3)).unwrap(), 3);
    }

    #[test]
    fn parse_maps() {
        let m = Datum::to_string_map(&json!([
            "map",
            [["dpdk-devargs", "net_null0"], ["n_rxq", "2"]]
        ]))
        .unwrap();
        assert_eq!(m.get("dpdk-devargs").map(String::as_str), Some("net_null0"));
        assert_eq!(m.len(), 2);
        assert!(Datum::to_string_map(&json!(["map", []]))
            .unwrap()
            .is_empty());
        let s = Datum::to_int_map(&json!(["map", [["rx_packets", 10], ["tx_bytes", 0]]])).unwrap();
        assert_eq!(s["rx_packets"], 10);
    }

    #[test]
    fn parse_wrong_shapes_are_errors() {
        for (v, what) in [
            (json!(["set", [1, 2]]), "opt"),
            (json!(["set", []]), "one"),
            (json!(5), "string"),
            (json!(["map", [["a", "b"]]]), "set"),
            (json!(["map", [["a"]]]), "map"),
            (json!(["map", [["a", 1]]]), "map"),
            (json!(["set", [["uuid", U1], "x"]]), "uuids"),
        ] {
            let r = match what {
                "opt" => Datum::to_opt_i64(&v).map(|_| ()),
                "one" => Datum::to_string_value(&v).map(|_| ()),
                "string" => Datum::to_string_value(&v).map(|_| ()),
                "set" => Datum::to_strings(&v).map(|_| ()),
                "map" => Datum::to_string_map(&v).map(|_| ()),
                _ => Datum::to_uuids(&v).map(|_| ()),
            };
            let e = r.unwrap_err();
            assert!(matches!(e, Error::Datum(_)), "{v}: {e}");
        }
    }

    #[test]
    fn emit_values() {
        assert_eq!(Datum::opt_i64(None), json!(["set", []]));
        assert_eq!(Datum::opt_i64(Some(-1)), json!(-1));
        assert_eq!(Datum::opt_string(Some("up")), json!("up"));
        assert_eq!(Datum::strings(&["netdev"]), json!("netdev"));
        assert_eq!(Datum::strings(&["a", "b"]), json!(["set", ["a", "b"]]));
        assert_eq!(Datum::strings::<&str>(&[]), json!(["set", []]));
        let mut m = BTreeMap::new();
        assert_eq!(Datum::string_map(&m), json!(["map", []]));
        m.insert("k".to_string(), "v".to_string());
        assert_eq!(Datum::string_map(&m), json!(["map", [["k", "v"]]]));
        let mut s = BTreeMap::new();
        s.insert("rx_packets".to_string(), 3);
        assert_eq!(Datum::int_map(&s), json!(["map", [["rx_packets", 3]]]));
        assert_eq!(
            Atom::NamedUuid("r".into()).to_json(),
            json!(["named-uuid", "r"])
        );
    }

    #[test]
    fn emit_parse_roundtrip() {
        for v in [
            json!(["set", [1, 2, 3]]),
            json!(["map", [["a", ["uuid", U1]]]]),
            json!(["uuid", U2]),
            json!(2.5),
            json!(false),
        ] {
            assert_eq!(Datum::parse(&v).unwrap().to_json(), v);
        }
    }
}
