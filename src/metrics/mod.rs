//! Prometheus text-format metrics for node_exporter's textfile collector, written atomically
//! (a temporary file renamed into place) so the collector never reads half a file.

use std::fmt::Write as _;
use std::path::Path;

pub mod runs;

pub use runs::of_run;

/// One sample: `name{labels} value`, with its help text.
pub struct Metric {
    pub name: &'static str,
    pub help: &'static str,
    pub labels: Vec<(&'static str, String)>,
    pub value: f64,
}

/// Render metrics in the text exposition format: one group per name (its HELP and TYPE lines,
/// then every sample of it), as the format requires, in the order names first appear.
pub fn render(metrics: &[Metric]) -> String {
    let mut names: Vec<&'static str> = Vec::new();
    for m in metrics {
        if !names.contains(&m.name) {
            names.push(m.name);
        }
    }
    let mut out = String::new();
    for name in names {
        let mut group = metrics.iter().filter(|m| m.name == name).peekable();
        if let Some(first) = group.peek() {
            let _ = writeln!(out, "# HELP {name} {}", first.help);
            let _ = writeln!(out, "# TYPE {name} gauge");
        }
        for m in group {
            sample(&mut out, m);
        }
    }
    out
}

fn sample(out: &mut String, m: &Metric) {
    let labels: Vec<String> = m
        .labels
        .iter()
        .map(|(k, v)| {
            format!(
                "{k}=\"{}\"",
                v.replace('\\', "\\\\")
                    .replace('"', "\\\"")
                    .replace('\n', "\\n")
            )
        })
        .collect();
    let labels = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{}}}", labels.join(","))
    };
    let _ = writeln!(out, "{}{labels} {}", m.name, m.value);
}

/// Write `metrics` to `path` atomically.
pub fn write(path: &Path, metrics: &[Metric]) -> std::io::Result<()> {
    let mut temporary = path.as_os_str().to_owned();
    temporary.push(format!(".{}.tmp", std::process::id()));
    let temporary = std::path::PathBuf::from(temporary);
    std::fs::write(&temporary, render(metrics))?;
    std::fs::rename(&temporary, path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_name_is_one_group_however_its_samples_were_interleaved() {
        let metric = |name, check: &str| Metric {
            name,
            help: "h",
            labels: vec![("check", check.into())],
            value: 1.0,
        };
        let text = render(&[
            metric("vecdrill_check_passed", "a"),
            metric("vecdrill_redis_seconds", "a"),
            metric("vecdrill_check_passed", "b"),
        ]);
        let names: Vec<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| l.split('{').next().unwrap())
            .collect();
        assert_eq!(
            names,
            [
                "vecdrill_check_passed",
                "vecdrill_check_passed",
                "vecdrill_redis_seconds"
            ],
            "{text}"
        );
    }

    #[test]
    fn renders_help_type_and_escaped_labels_once_per_name() {
        let text = render(&[
            Metric {
                name: "vecdrill_check_passed",
                help: "1 when the check passed",
                labels: vec![("check", "heart\"beat".into())],
                value: 1.0,
            },
            Metric {
                name: "vecdrill_check_passed",
                help: "1 when the check passed",
                labels: vec![("check", "disk".into())],
                value: 0.0,
            },
        ]);
        assert_eq!(
            text.matches("# TYPE vecdrill_check_passed gauge").count(),
            1
        );
        assert!(
            text.contains("vecdrill_check_passed{check=\"heart\\\"beat\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("vecdrill_check_passed{check=\"disk\"} 0\n"),
            "{text}"
        );
    }
}
