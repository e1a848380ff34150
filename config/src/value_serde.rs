//! Serde support for value types that live in TOML as strings
//! (`"0000:3b:00.0"`, `"02:00:00:00:00:01"`, `"198.18.1.11/24"`).
//!
//! Parsing goes through each type's `FromStr`, so a bad value fails during
//! deserialisation with the type's own message and the value's position.

/// Implements `Serialize` (via `Display`) and `Deserialize` (via `FromStr`)
/// for a type whose TOML form is a string. `$expecting` completes
/// "invalid type: integer `5`, expected ...".
macro_rules! string_serde {
    ($ty:ty, $expecting:literal) => {
        impl serde::Serialize for $ty {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> serde::Deserialize<'de> for $ty {
            fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                struct Visitor;
                impl serde::de::Visitor<'_> for Visitor {
                    type Value = $ty;
                    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                        f.write_str($expecting)
                    }
                    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<$ty, E> {
                        s.parse().map_err(E::custom)
                    }
                }
                deserializer.deserialize_str(Visitor)
            }
        }
    };
}

pub(crate) use string_serde;
