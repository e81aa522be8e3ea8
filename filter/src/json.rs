//! A JSON value read in place: strings and member names borrowed from the client's body (copied
//! only when they hold escapes), objects as lists of members. What the request checks walk
//! instead of a `serde_json::Value`, whose every string and member name is an allocation and
//! every object a B-tree: that tree was most of a request's parse.
//!
//! An object keeps every member in the order sent, repeated names included: [`Object::get`]
//! answers the last one (as `serde_json::Value` keeps it), and walking the members visits each,
//! so a check that walks them sees a repeated member's every value.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;
use serde_json::value::RawValue;
use serde_json::Number;

#[derive(Debug, Clone, PartialEq)]
pub enum Json<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<Json<'a>>),
    Object(Object<'a>),
}

/// An object's members, in the order sent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Object<'a>(Vec<(Cow<'a, str>, Json<'a>)>);

impl<'a> Json<'a> {
    /// `body` read in place; serde_json's errors (syntax, nesting deeper than 128).
    pub fn from_slice(body: &'a [u8]) -> Result<Self, serde_json::Error> {
        serde_json::from_slice(body)
    }

    /// The member `key` of an object; `None` for a missing member or another type.
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.as_object().and_then(|o| o.get(key))
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Self::Null)
    }

    pub fn is_boolean(&self) -> bool {
        matches!(self, Self::Bool(_))
    }

    pub fn is_string(&self) -> bool {
        matches!(self, Self::String(_))
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Self::String(s) => Some(s),
            _ => None,
        }
    }

    pub fn as_array(&self) -> Option<&[Json<'a>]> {
        match self {
            Self::Array(items) => Some(items),
            _ => None,
        }
    }

    pub fn as_object(&self) -> Option<&Object<'a>> {
        match self {
            Self::Object(o) => Some(o),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<&Number> {
        match self {
            Self::Number(n) => Some(n),
            _ => None,
        }
    }

    pub fn as_u64(&self) -> Option<u64> {
        self.as_number().and_then(Number::as_u64)
    }

    pub fn is_u64(&self) -> bool {
        self.as_number().is_some_and(Number::is_u64)
    }
}

/// What the gateway reads of a JSON value, alike for a value read in place ([`Json`]) and a
/// JSON tree (`serde_json::Value`, which answers and stream events are still read into).
pub trait JsonValue {
    /// The member `key` of an object; `None` for a missing member or another type.
    fn member(&self, key: &str) -> Option<&Self>;
    fn as_count(&self) -> Option<u64>;
    fn is_object(&self) -> bool;
    fn shape(&self) -> Shape;

    /// What the value is, as an error message says it (`a string`, `an integer`).
    fn kind(&self) -> &'static str {
        match self.shape() {
            Shape::Null => "null",
            Shape::Bool => "a boolean",
            Shape::Integer => "an integer",
            Shape::Decimal => "a decimal number",
            Shape::String => "a string",
            Shape::Array => "an array",
            Shape::Object => "an object",
        }
    }
}

/// The JSON types, integers apart from other numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    Null,
    Bool,
    Integer,
    Decimal,
    String,
    Array,
    Object,
}

fn number_shape(n: &Number) -> Shape {
    if n.is_i64() || n.is_u64() {
        Shape::Integer
    } else {
        Shape::Decimal
    }
}

impl JsonValue for Json<'_> {
    fn member(&self, key: &str) -> Option<&Self> {
        self.get(key)
    }

    fn as_count(&self) -> Option<u64> {
        self.as_u64()
    }

    fn is_object(&self) -> bool {
        matches!(self, Self::Object(_))
    }

    fn shape(&self) -> Shape {
        match self {
            Self::Null => Shape::Null,
            Self::Bool(_) => Shape::Bool,
            Self::Number(n) => number_shape(n),
            Self::String(_) => Shape::String,
            Self::Array(_) => Shape::Array,
            Self::Object(_) => Shape::Object,
        }
    }
}

impl JsonValue for serde_json::Value {
    fn member(&self, key: &str) -> Option<&Self> {
        self.get(key)
    }

    fn as_count(&self) -> Option<u64> {
        self.as_u64()
    }

    fn is_object(&self) -> bool {
        self.is_object()
    }

    fn shape(&self) -> Shape {
        use serde_json::Value;
        match self {
            Value::Null => Shape::Null,
            Value::Bool(_) => Shape::Bool,
            Value::Number(n) => number_shape(n),
            Value::String(_) => Shape::String,
            Value::Array(_) => Shape::Array,
            Value::Object(_) => Shape::Object,
        }
    }
}

impl<'a> Object<'a> {
    /// The last member named `key` (a repeated name counts as `serde_json::Value` counts it).
    pub fn get(&self, key: &str) -> Option<&Json<'a>> {
        self.0
            .iter()
            .rev()
            .find(|(name, _)| name == key)
            .map(|(_, value)| value)
    }

    /// Members sent, repeated names counted each time.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Every member in the order sent, a repeated name each time.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &Json<'a>)> {
        self.0.iter().map(|(name, value)| (name.as_ref(), value))
    }
}

/// An object's members with each value as the JSON text the client wrote: what a body that is
/// only amended (a member replaced or added) is rewritten from, every other member copied as it
/// came, nothing parsed into a value or escaped again.
#[derive(Debug, Default)]
pub struct RawMembers<'a>(pub Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for RawMembers<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MembersVisitor<'a>(PhantomData<RawMembers<'a>>);

        impl<'de: 'a, 'a> Visitor<'de> for MembersVisitor<'a> {
            type Value = RawMembers<'a>;

            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
                members(map).map(RawMembers)
            }
        }

        deserializer.deserialize_map(MembersVisitor(PhantomData))
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Json<'a> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(JsonVisitor(PhantomData))
    }
}

struct JsonVisitor<'a>(PhantomData<Json<'a>>);

impl<'de: 'a, 'a> Visitor<'de> for JsonVisitor<'a> {
    type Value = Json<'a>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(Json::Bool(b))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
        Ok(Json::Number(n.into()))
    }

    fn visit_f64<E>(self, x: f64) -> Result<Self::Value, E> {
        // JSON has no NaN or infinity; serde_json's own Value maps them to null alike.
        Ok(Number::from_f64(x).map_or(Json::Null, Json::Number))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Json::String(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Json::String(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Json::String(Cow::Owned(s)))
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(Json::Null)
    }

    fn visit_none<E>(self) -> Result<Self::Value, E> {
        Ok(Json::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        Json::deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Json::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        members(map).map(|m| Json::Object(Object(m)))
    }
}

/// An object's members in the order sent, each value read as `V` (a [`Json`] or the raw text).
fn members<'de: 'a, 'a, A, V>(mut map: A) -> Result<Vec<(Cow<'a, str>, V)>, A::Error>
where
    A: MapAccess<'de>,
    V: Deserialize<'de>,
{
    let mut members = Vec::new();
    while let Some(name) = map.next_key_seed(NameSeed(PhantomData))? {
        members.push((name, map.next_value()?));
    }
    Ok(members)
}

/// A member name, borrowed when it has no escapes.
struct NameSeed<'a>(PhantomData<&'a str>);

impl<'de: 'a, 'a> DeserializeSeed<'de> for NameSeed<'a> {
    type Value = Cow<'a, str>;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_str(self)
    }
}

impl<'de: 'a, 'a> Visitor<'de> for NameSeed<'a> {
    type Value = Cow<'a, str>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a member name")
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(s))
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s.to_owned()))
    }

    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(s))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    #[test]
    fn reads_what_serde_json_reads() {
        let text = br#"{"a": [1, -2, 2.5, 18446744073709551615, true, null, "x\u00e9\"y"],
                        "b": {"c": {}}, "d": "plain", "\u0065": 1e3}"#;
        let ours = Json::from_slice(text).unwrap();
        let theirs: Value = serde_json::from_slice(text).unwrap();
        let a = ours.get("a").and_then(Json::as_array).unwrap();
        let expected = theirs["a"].as_array().unwrap();
        assert_eq!(a.len(), expected.len());
        let int = |v: &Json| v.as_number().and_then(Number::as_i64);
        assert_eq!(int(&a[0]), Some(1));
        assert_eq!(int(&a[1]), Some(-2));
        assert_eq!(a[2].as_number().and_then(Number::as_f64), Some(2.5));
        assert_eq!(a[3].as_u64(), Some(u64::MAX));
        assert!(a[3].is_u64() && int(&a[3]).is_none());
        assert_eq!(a[4], Json::Bool(true));
        assert!(a[5].is_null());
        assert_eq!(a[6].as_str(), Some("x\u{e9}\"y"));
        assert_eq!(
            ours.get("b").and_then(|b| b.get("c")),
            Some(&Json::Object(Object::default()))
        );
        // An escaped member name is read like any other.
        assert_eq!(
            ours.get("e")
                .and_then(Json::as_number)
                .and_then(Number::as_f64),
            Some(1000.0)
        );
        assert_eq!(ours.get("nope"), None);
        assert_eq!(ours.get("d").and_then(|d| d.get("x")), None);
    }

    #[test]
    fn strings_without_escapes_are_borrowed_from_the_body() {
        let text = br#"{"model": "gpt-4o", "n\u0061me": "a\nb"}"#;
        let json = Json::from_slice(text).unwrap();
        let Json::Object(o) = &json else {
            panic!("not an object")
        };
        assert!(matches!(&o.0[0].0, Cow::Borrowed("model")));
        assert!(matches!(
            o.get("model"),
            Some(Json::String(Cow::Borrowed("gpt-4o")))
        ));
        assert!(matches!(&o.0[1].0, Cow::Owned(n) if n == "name"));
        assert!(matches!(o.get("name"), Some(Json::String(Cow::Owned(s))) if s == "a\nb"));
    }

    #[test]
    fn a_repeated_member_answers_its_last_value_and_is_walked_each_time() {
        let json = Json::from_slice(br#"{"n": 1, "m": 0, "n": "two"}"#).unwrap();
        let o = json.as_object().unwrap();
        assert_eq!(o.get("n").and_then(Json::as_str), Some("two"));
        let names: Vec<&str> = o.iter().map(|(name, _)| name).collect();
        assert_eq!(names, ["n", "m", "n"]);
        assert_eq!(o.len(), 3);
    }

    #[test]
    fn kinds_are_named_as_errors_name_them() {
        let text = br#"[null, true, 1, -1, 1.5, "s", [], {}]"#;
        let json = Json::from_slice(text).unwrap();
        let kinds: Vec<&str> = json
            .as_array()
            .unwrap()
            .iter()
            .map(JsonValue::kind)
            .collect();
        let tree: Value = serde_json::from_slice(text).unwrap();
        let tree_kinds: Vec<&str> = tree
            .as_array()
            .unwrap()
            .iter()
            .map(JsonValue::kind)
            .collect();
        assert_eq!(kinds, tree_kinds);
        assert_eq!(
            kinds,
            [
                "null",
                "a boolean",
                "an integer",
                "an integer",
                "a decimal number",
                "a string",
                "an array",
                "an object"
            ]
        );
    }

    #[test]
    fn refuses_what_serde_json_refuses() {
        let deep = "[".repeat(200) + &"]".repeat(200);
        for bad in ["{", "{\"a\" 1}", "[1,]", "nul", "1e999", deep.as_str()] {
            let ours = Json::from_slice(bad.as_bytes())
                .map(|_| ())
                .map_err(|e| e.to_string());
            let theirs = serde_json::from_str::<Value>(bad)
                .map(|_| ())
                .map_err(|e| e.to_string());
            assert!(ours.is_err(), "{bad}");
            assert_eq!(ours, theirs, "{bad}");
        }
    }
}
