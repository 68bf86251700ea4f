//! One benchmark result: printed as a human table, then as one JSON line on stdout.

use serde_json::{Map, Value};

/// An ordered set of named figures.
#[derive(Debug, Clone)]
pub struct Report {
    fields: Map<String, Value>,
}

impl Report {
    /// A report whose first field is `"bench": name`.
    pub fn new(bench: &str) -> Self {
        let mut fields = Map::new();
        fields.insert("bench".into(), bench.into());
        Self { fields }
    }

    /// Sets an integer, string or boolean field.
    pub fn set(&mut self, key: &str, value: impl Into<Value>) -> &mut Self {
        self.fields.insert(key.into(), value.into());
        self
    }

    /// Sets a float field rounded to `decimals` (`null` for `None` or non-finite).
    pub fn set_f(&mut self, key: &str, value: Option<f64>, decimals: i32) -> &mut Self {
        let value = value
            .filter(|v| v.is_finite())
            .map(|v| {
                let scale = 10f64.powi(decimals);
                Value::from((v * scale).round() / scale)
            })
            .unwrap_or(Value::Null);
        self.fields.insert(key.into(), value);
        self
    }

    /// A field's value, if set.
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.fields.get(key)
    }

    /// The aligned `name  value` table.
    pub fn table(&self) -> String {
        let width = self.fields.keys().map(String::len).max().unwrap_or(0);
        let mut out = String::new();
        for (k, v) in &self.fields {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            out.push_str(&format!("  {k:<width$}  {v}\n"));
        }
        out
    }

    /// The single-line JSON object.
    pub fn json(&self) -> String {
        Value::Object(self.fields.clone()).to_string()
    }

    /// Prints the table, then the JSON line, to stdout.
    pub fn print(&self) {
        println!("{}", self.table());
        println!("{}", self.json());
    }
}

#[cfg(test)]
mod tests {
    use super::Report;

    #[test]
    fn keeps_order_and_rounds() {
        let mut r = Report::new("echo");
        r.set("msg_size", 64).set_f("server_cpu", Some(0.97123), 3);
        r.set_f("p50_us", None, 1);
        assert_eq!(
            r.json(),
            r#"{"bench":"echo","msg_size":64,"server_cpu":0.971,"p50_us":null}"#
        );
        assert!(r.table().contains("  server_cpu  0.971\n"));
    }
}
