//! Where each configuration key came from, and the keys that are not ours.
//!
//! serde's `deny_unknown_fields` refuses an unknown key but cannot say where
//! it was: the `config` crate merges the file and the environment before
//! serde sees them. So before that merge, [`check_file`] walks the file's TOML
//! document (every key with its byte span) and [`check_environment`] the
//! `ROWHOOK__*` variables, against the keys the config structs know. Those
//! keys are read from the structs' own `Deserialize` impls ([`fields`]), so
//! this list and the structs cannot drift apart. An unknown key is reported
//! with its file and line, or its variable, and the closest known key ("did
//! you mean `heartbeat`?"). The known keys' places are kept as [`Origins`],
//! so that later messages about a value (a bad duration, an unreachable
//! database) name the line or the variable it came from.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, DeserializeOwned, Visitor};
use toml::de::{DeTable, DeValue};

use super::{
    rule_label, AdminConfig, ChangesSpec, Condition, Config, DeliveryConfig, EventRule, HttpConfig, LogConfig, SourceConfig, StateConfig,
    TokenConfig,
};

/// The prefix of the environment variables that override keys.
pub const ENV_PREFIX: &str = "ROWHOOK__";

/// Where a key was set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    /// A line of the config file.
    File { path: String, line: usize },
    /// An environment variable, by its name as set (`ROWHOOK__SOURCE__URL`).
    Env(String),
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::File { path, line } => write!(f, "{path}, line {line}"),
            Origin::Env(name) => write!(f, "environment variable {name}"),
        }
    }
}

/// The place of every key that was set, by dotted path: `source.url`,
/// `events.5.table` (array elements by their index from 0). The environment
/// wins over the file, as it does for the values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origins(BTreeMap<String, Origin>);

impl Origins {
    /// Where exactly this key was set.
    pub fn get(&self, path: &str) -> Option<&Origin> {
        self.0.get(path)
    }

    /// Where this key, or else the nearest table holding it, was set: a
    /// rule's missing key is located at its `[[events]]` line.
    pub fn nearest(&self, path: &str) -> Option<&Origin> {
        let mut path = path;
        loop {
            if let Some(origin) = self.0.get(path) {
                return Some(origin);
            }
            path = &path[..path.rfind('.')?];
        }
    }

    /// Adds `other`'s keys; `other` wins where both set one.
    pub fn extend(&mut self, other: Origins) {
        self.0.extend(other.0);
    }

    fn insert(&mut self, path: String, origin: Origin) {
        self.0.insert(path, origin);
    }
}

/// A key no config struct has.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKey {
    /// The key as written, lowercased for variables (`heartbaet`, `urll`).
    pub key: String,
    /// The table it is in: `[source]`, `events rule 3 (order.shipped)`, `the top level`.
    pub within: String,
    pub origin: Origin,
    /// What to write instead, or where the key belongs, or the keys there are.
    pub hint: String,
}

impl fmt::Display for UnknownKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.origin {
            Origin::File { .. } => write!(f, "unknown key `{}` in {} ({}): {}", self.key, self.within, self.origin, self.hint),
            Origin::Env(name) => write!(f, "unknown key `{}` in {}, from the environment variable {name}: {}", self.key, self.within, self.hint),
        }
    }
}

/// The field names a struct's `Deserialize` impl accepts, as written in the
/// config (renames applied): the impl hands them to `deserialize_struct`,
/// which this deserializer records and then refuses.
pub fn fields<T: DeserializeOwned>() -> &'static [&'static str] {
    struct Recorder(&'static [&'static str]);

    impl<'de> de::Deserializer<'de> for &mut Recorder {
        type Error = de::value::Error;

        fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
            Err(de::Error::custom("not a struct"))
        }

        fn deserialize_struct<V: Visitor<'de>>(
            self,
            _name: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0 = fields;
            Err(de::Error::custom("recorded"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier ignored_any
        }
    }

    let mut recorder = Recorder(&[]);
    let _ = T::deserialize(&mut recorder);
    recorder.0
}

/// The keys of the table at `path` (key names, array indices left out), or
/// None where any key goes (`fields`) or no table belongs.
fn table_keys(path: &[&str]) -> Option<&'static [&'static str]> {
    Some(match path {
        [] => fields::<Config>(),
        ["source"] => fields::<SourceConfig>(),
        ["state"] => fields::<StateConfig>(),
        ["http"] => fields::<HttpConfig>(),
        ["admin"] => fields::<AdminConfig>(),
        ["delivery"] => fields::<DeliveryConfig>(),
        ["log"] => fields::<LogConfig>(),
        ["events"] => fields::<EventRule>(),
        ["events", "conditions"] => fields::<Condition>(),
        ["events", "changes"] => fields::<ChangesSpec>(),
        ["admin", "tokens", _] => fields::<TokenConfig>(),
        _ => return None,
    })
}

/// Whether the table at `path` holds tables under names the user chooses,
/// each with known keys (`[admin.tokens.NAME]`): its own keys are not checked.
fn named_tables(path: &[&str]) -> bool {
    matches!(path, ["admin", "tokens"])
}

/// The sections (top-level tables) and their keys, for "belongs in [admin]".
fn sections() -> impl Iterator<Item = (&'static str, &'static [&'static str])> {
    fields::<Config>().iter().filter(|s| **s != "events").filter_map(|s| Some((*s, table_keys(&[s])?)))
}

/// The known key closest to `word`, if one is close enough to be a slip:
/// at most a third of its letters differ (a swap counts once), at least one.
pub fn closest<'a>(word: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let word = word.to_ascii_lowercase();
    candidates
        .iter()
        .map(|c| (strsim::damerau_levenshtein(&word, c), *c))
        .filter(|(distance, c)| *distance <= (c.chars().count() / 3).max(1))
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, c)| c)
}

/// How a table is named in messages.
fn table_name(path: &[&str]) -> String {
    match path {
        [] => "the top level".to_string(),
        [section] => format!("[{section}]"),
        ["admin", ..] => format!("[{}]", path.join(".")),
        _ => path.join("."),
    }
}

/// What to say about an unknown `key` in the table at `path` whose keys are
/// `known`; `spell` writes a key as the user would (`heartbeat`, or a
/// variable's name).
fn hint(key: &str, path: &[&str], known: &[&str], spell: &dyn Fn(&str) -> String) -> String {
    if let Some(near) = closest(key, known) {
        return format!("did you mean {}?", spell(near));
    }
    let lower = key.to_ascii_lowercase();
    let homes: Vec<String> = sections()
        .filter(|(section, keys)| path != [*section] && keys.contains(&lower.as_str()))
        .map(|(section, _)| format!("[{section}]"))
        .collect();
    if !homes.is_empty() {
        return format!("`{lower}` is a key of {}", homes.join(" and "));
    }
    let shown: Vec<String> = known.iter().map(|k| spell(k)).collect();
    format!("the keys there are {}", shown.join(", "))
}

/// The line (from 1) of byte `offset` in `text`.
fn line_of(text: &str, offset: usize) -> usize {
    text.get(..offset).unwrap_or(text).matches('\n').count() + 1
}

/// Checks a parsed config file: every key must be known. Returns the place
/// of every key, and the unknown ones in file order.
pub fn check_file(text: &str, document: &DeTable<'_>, path: &str) -> (Origins, Vec<UnknownKey>) {
    let mut walk = FileWalk { text, path, origins: Origins::default(), unknown: Vec::new() };
    walk.table(document, &mut Vec::new(), "", "the top level");
    let FileWalk { origins, mut unknown, .. } = walk;
    unknown.sort_by_key(|u| match u.origin {
        Origin::File { line, .. } => line,
        Origin::Env(_) => 0,
    });
    (origins, unknown)
}

struct FileWalk<'t> {
    text: &'t str,
    path: &'t str,
    origins: Origins,
    unknown: Vec<UnknownKey>,
}

impl FileWalk<'_> {
    fn at(&self, span: std::ops::Range<usize>) -> Origin {
        Origin::File { path: self.path.to_string(), line: line_of(self.text, span.start) }
    }

    /// `names`: the key names down to this table; `dotted`: its path with
    /// indices; `within`: its name in messages.
    fn table<'n>(&mut self, table: &'n DeTable<'_>, names: &mut Vec<&'n str>, dotted: &str, within: &str) {
        let known = table_keys(names);
        for (key, value) in table {
            let name: &str = key.get_ref();
            let here = if dotted.is_empty() { name.to_string() } else { format!("{dotted}.{name}") };
            self.origins.insert(here.clone(), self.at(key.span()));
            let known = match known {
                Some(known) => known,
                // A name of the user's: its table's keys are checked one level down.
                None if named_tables(names) => &[][..],
                None => continue,
            };
            if !known.is_empty() && !known.contains(&name) {
                let section = names.is_empty() && matches!(value.get_ref(), DeValue::Table(_));
                let (key_text, hint) = if section {
                    let sections: Vec<&str> = sections().map(|(s, _)| s).collect();
                    let hint = match closest(name, &sections) {
                        Some(near) => format!("did you mean [{near}]?"),
                        None => format!("the sections are [{}] and [[events]]", sections.join("], [")),
                    };
                    (format!("[{name}]"), hint)
                } else {
                    (name.to_string(), hint(name, names, known, &|k| format!("`{k}`")))
                };
                let unknown = UnknownKey {
                    key: key_text,
                    within: within.to_string(),
                    origin: self.at(key.span()),
                    hint,
                };
                self.unknown.push(if section { UnknownKey { within: "the top level".into(), ..unknown } } else { unknown });
                continue;
            }
            names.push(name);
            match value.get_ref() {
                DeValue::Table(inner) => {
                    let inner_within = match names.as_slice() {
                        [_] | ["admin", ..] => table_name(names),
                        _ => format!("{within}, {name}"),
                    };
                    self.table(inner, names, &here, &inner_within);
                }
                DeValue::Array(items) => {
                    for (i, item) in items.iter().enumerate() {
                        let DeValue::Table(inner) = item.get_ref() else { continue };
                        let element = format!("{here}.{i}");
                        self.origins.insert(element.clone(), self.at(item.span()));
                        let inner_within = match names.as_slice() {
                            ["events"] => rule_label(i, &event_type(inner)),
                            ["events", "conditions"] => format!("{within}, condition {}", i + 1),
                            _ => format!("{within}, {name} {}", i + 1),
                        };
                        self.table(inner, names, &element, &inner_within);
                    }
                }
                _ => {}
            }
            names.pop();
        }
    }
}

/// The label of every `[[events]]` rule of a parsed file, in file order
/// (`events rule 1 (thread.created)`, ...).
pub fn rule_labels(document: &DeTable<'_>) -> Vec<String> {
    let rules = document.iter().find(|(k, _)| k.get_ref() == "events").map(|(_, v)| v.get_ref());
    let Some(DeValue::Array(rules)) = rules else { return Vec::new() };
    rules
        .iter()
        .enumerate()
        .map(|(i, rule)| match rule.get_ref() {
            DeValue::Table(rule) => rule_label(i, &event_type(rule)),
            _ => rule_label(i, "not a table"),
        })
        .collect()
}

/// A rule's `type`, as written.
fn event_type(rule: &DeTable<'_>) -> String {
    match rule.iter().find(|(k, _)| k.get_ref() == "type").map(|(_, t)| t.get_ref()) {
        Some(DeValue::String(t)) => t.to_string(),
        _ => "no type".to_string(),
    }
}

/// Checks the `ROWHOOK__SECTION__KEY` variables among `vars` (matched
/// without regard to case, as the `config` crate matches them): every
/// section and key they name must be known. Returns the place of every key
/// they set, and the unknown ones by variable name.
pub fn check_environment(vars: impl IntoIterator<Item = (String, String)>) -> (Origins, Vec<UnknownKey>) {
    let mut origins = Origins::default();
    let mut unknown = Vec::new();
    let prefix = ENV_PREFIX.to_ascii_lowercase();
    for (name, _) in vars {
        let lower = name.to_ascii_lowercase();
        let Some(rest) = lower.strip_prefix(&prefix) else { continue };
        let segments: Vec<&str> = rest.split("__").collect();
        origins.insert(segments.join("."), Origin::Env(name.clone()));
        for depth in 0..segments.len() {
            let path = &segments[..depth];
            if named_tables(path) {
                continue; // a name of the user's
            }
            let Some(known) = table_keys(path) else { break };
            let key = segments[depth];
            if known.contains(&key) {
                continue;
            }
            let variable = |k: &str| {
                let mut parts: Vec<&str> = segments.clone();
                parts[depth] = k;
                format!("{ENV_PREFIX}{}", parts.join("__").to_ascii_uppercase())
            };
            let (key_text, within, hint) = if depth == 0 {
                let names: Vec<&str> = sections().map(|(s, _)| s).collect();
                let hint = match closest(key, &names) {
                    Some(near) => format!("did you mean {}?", variable(near)),
                    None => format!("the sections are {}", names.join(", ")),
                };
                (format!("[{key}]"), "the top level".to_string(), hint)
            } else {
                (key.to_string(), table_name(path), hint(key, path, known, &variable))
            };
            unknown.push(UnknownKey { key: key_text, within, origin: Origin::Env(name.clone()), hint });
            break;
        }
    }
    unknown.sort_by_key(|u| u.origin.to_string());
    (origins, unknown)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> (Origins, Vec<UnknownKey>) {
        let document = DeTable::parse(text).unwrap();
        check_file(text, document.get_ref(), "rowhook.toml")
    }

    fn env(names: &[&str]) -> (Origins, Vec<UnknownKey>) {
        check_environment(names.iter().map(|n| (n.to_string(), "x".to_string())))
    }

    #[test]
    fn the_known_keys_come_from_the_structs() {
        assert_eq!(fields::<SourceConfig>(), ["url", "server_id", "start", "heartbeat", "time_zone"]);
        assert!(fields::<EventRule>().contains(&"type"), "renames applied");
        assert!(!fields::<Config>().contains(&"origins"), "skipped fields are not keys");
        assert!(fields::<DeliveryConfig>().contains(&"retry_schedule"));
    }

    #[test]
    fn slips_get_the_closest_key_and_far_words_none() {
        let keys = fields::<SourceConfig>();
        assert_eq!(closest("heartbaet", keys), Some("heartbeat"), "a swap");
        assert_eq!(closest("urll", keys), Some("url"));
        assert_eq!(closest("Server-ID", keys), Some("server_id"), "case and a dash");
        assert_eq!(closest("timezone", keys), Some("time_zone"));
        assert_eq!(closest("password", keys), None);
        assert_eq!(closest("foo", keys), None);
        assert_eq!(closest("timeuot", fields::<DeliveryConfig>()), Some("timeout"));
    }

    #[test]
    fn an_unknown_key_in_the_file_has_its_line_and_a_suggestion() {
        let (origins, unknown) = file("[source]\nurl = \"mysql://r@h/db\"\nheartbaet = \"5s\"\n\n[delivery]\ntimeout = \"5s\"\n");
        assert_eq!(unknown.len(), 1, "{unknown:?}");
        assert_eq!(
            unknown[0].to_string(),
            "unknown key `heartbaet` in [source] (rowhook.toml, line 3): did you mean `heartbeat`?"
        );
        assert_eq!(origins.get("source.url"), Some(&Origin::File { path: "rowhook.toml".into(), line: 2 }));
        assert_eq!(origins.get("delivery.timeout"), Some(&Origin::File { path: "rowhook.toml".into(), line: 6 }));
    }

    #[test]
    fn every_unknown_key_is_reported_in_file_order() {
        let text = "[source]\nurl = \"u\"\npasword = \"x\"\n[delivry]\ntimeout = \"5s\"\n[http]\ntoken = \"t\"\n";
        let (_, unknown) = file(text);
        let lines: Vec<String> = unknown.iter().map(ToString::to_string).collect();
        assert_eq!(lines.len(), 3, "{lines:#?}");
        assert!(lines[0].contains("`pasword` in [source] (rowhook.toml, line 3): the keys there are `url`, `server_id`"), "{}", lines[0]);
        assert!(lines[1].contains("`[delivry]` in the top level (rowhook.toml, line 4): did you mean [delivery]?"), "{}", lines[1]);
        assert!(lines[2].contains("`token` in [http] (rowhook.toml, line 7): `token` is a key of [admin]"), "{}", lines[2]);
    }

    #[test]
    fn keys_of_rules_and_conditions_are_checked_and_rules_count_from_1() {
        let text = "[source]\nurl = \"u\"\n\n[[events]]\ntype = \"a.b\"\ntable = \"t\"\noperations = [\"insert\"]\n\n\
                    [[events]]\ntype = \"c.d\"\ntabel = \"t\"\noperations = [\"insert\"]\n\
                    conditions = [{ column = \"x\", equal = 1 }]\nfields = { anything = \"goes\" }\n";
        let (origins, unknown) = file(text);
        let lines: Vec<String> = unknown.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "unknown key `tabel` in events rule 2 (c.d) (rowhook.toml, line 11): did you mean `table`?",
                "unknown key `equal` in events rule 2 (c.d), condition 1 (rowhook.toml, line 13): did you mean `equals`?",
            ]
        );
        assert_eq!(origins.get("events.1.operations"), Some(&Origin::File { path: "rowhook.toml".into(), line: 12 }));
        assert_eq!(origins.nearest("events.0.conditions"), Some(&Origin::File { path: "rowhook.toml".into(), line: 4 }));
    }

    #[test]
    fn a_key_at_the_top_level_is_sent_to_its_section() {
        let (_, unknown) = file("url = \"mysql://r@h/db\"\n");
        assert_eq!(unknown[0].to_string(), "unknown key `url` in the top level (rowhook.toml, line 1): `url` is a key of [source] and [state]");
    }

    #[test]
    fn an_unknown_variable_is_named_with_the_variable_to_set_instead() {
        let (origins, unknown) = env(&[
            "ROWHOOK__SOURCE__URLL",
            "ROWHOOK__DELIVRY__TIMEOUT",
            "ROWHOOK__HTTP__LISTEN",
            "rowhook__log__levle",
            "ROWHOOK_LISTEN_SECRET",
            "PATH",
        ]);
        let lines: Vec<String> = unknown.iter().map(ToString::to_string).collect();
        assert_eq!(
            lines,
            [
                "unknown key `[delivry]` in the top level, from the environment variable ROWHOOK__DELIVRY__TIMEOUT: did you mean ROWHOOK__DELIVERY__TIMEOUT?",
                "unknown key `urll` in [source], from the environment variable ROWHOOK__SOURCE__URLL: did you mean ROWHOOK__SOURCE__URL?",
                "unknown key `levle` in [log], from the environment variable rowhook__log__levle: did you mean ROWHOOK__LOG__LEVEL?",
            ]
        );
        assert_eq!(origins.get("http.listen"), Some(&Origin::Env("ROWHOOK__HTTP__LISTEN".into())));
        assert_eq!(origins.get("source.url"), None);
    }
}
