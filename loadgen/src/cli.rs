//! A deliberately tiny command-line parser: `--key value`, `--key=value` and bare
//! `--flag` options, with an error for anything left unused.

use std::str::FromStr;

/// Remaining command-line words, consumed option by option.
#[derive(Debug)]
pub struct Args {
    words: Vec<String>,
}

impl Args {
    /// Takes the process arguments, without the program name.
    pub fn from_env() -> Self {
        Self::new(std::env::args().skip(1))
    }

    /// Builds from any word list (handy in tests).
    pub fn new<I: IntoIterator<Item = S>, S: Into<String>>(words: I) -> Self {
        let words = words
            .into_iter()
            .flat_map(|w| {
                let w: String = w.into();
                // Split `--key=value` into two words once, up front.
                match w.strip_prefix("--").and_then(|rest| rest.split_once('=')) {
                    Some((k, v)) => vec![format!("--{k}"), v.to_string()],
                    None => vec![w],
                }
            })
            .collect();
        Self { words }
    }

    /// Removes and returns the first word if it is not an option (a subcommand).
    pub fn subcommand(&mut self) -> Option<String> {
        match self.words.first() {
            Some(w) if !w.starts_with('-') => Some(self.words.remove(0)),
            _ => None,
        }
    }

    /// True if bare `name` is present (and removes it).
    pub fn flag(&mut self, name: &str) -> bool {
        match self.words.iter().position(|w| w == name) {
            Some(i) => {
                self.words.remove(i);
                true
            }
            None => false,
        }
    }

    /// The raw value of `name`, if given.
    pub fn opt_str(&mut self, name: &str) -> crate::Result<Option<String>> {
        let Some(i) = self.words.iter().position(|w| w == name) else {
            return Ok(None);
        };
        if i + 1 >= self.words.len() {
            return Err(format!("{name} needs a value").into());
        }
        let value = self.words.remove(i + 1);
        self.words.remove(i);
        Ok(Some(value))
    }

    /// The parsed value of `name`, if given.
    pub fn opt<T: FromStr>(&mut self, name: &str) -> crate::Result<Option<T>>
    where
        T::Err: std::fmt::Display,
    {
        match self.opt_str(name)? {
            Some(v) => v
                .parse()
                .map(Some)
                .map_err(|e| format!("bad value for {name}: {v:?}: {e}").into()),
            None => Ok(None),
        }
    }

    /// The parsed value of `name`, or `default`.
    pub fn get<T: FromStr>(&mut self, name: &str, default: T) -> crate::Result<T>
    where
        T::Err: std::fmt::Display,
    {
        Ok(self.opt(name)?.unwrap_or(default))
    }

    /// The parsed value of `name`, which must be present.
    pub fn required<T: FromStr>(&mut self, name: &str) -> crate::Result<T>
    where
        T::Err: std::fmt::Display,
    {
        self.opt(name)?
            .ok_or_else(|| format!("missing required option {name}").into())
    }

    /// Fails if any word was not consumed.
    pub fn finish(self) -> crate::Result<()> {
        if self.words.is_empty() {
            Ok(())
        } else {
            Err(format!("unexpected arguments: {}", self.words.join(" ")).into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_options_flags_and_subcommand() {
        let mut a = Args::new(["echo", "--conns=5", "--binary", "--size", "64"]);
        assert_eq!(a.subcommand().as_deref(), Some("echo"));
        assert_eq!(a.get::<usize>("--conns", 1).unwrap(), 5);
        assert!(a.flag("--binary"));
        assert_eq!(a.required::<usize>("--size").unwrap(), 64);
        assert_eq!(a.get::<u64>("--duration", 7).unwrap(), 7);
        a.finish().unwrap();
    }

    #[test]
    fn rejects_leftovers_and_missing_values() {
        let mut a = Args::new(["--size"]);
        assert!(a.opt_str("--size").is_err());
        assert!(Args::new(["--what"]).finish().is_err());
    }
}
