//! `${...}` substitution in scenario strings.
//!
//! Three kinds of reference:
//! - `${NAME}`: a scenario variable (`vars:` or `--var NAME=VALUE`), resolved when loading;
//! - `${env.NAME}`: an environment variable, resolved when loading;
//! - `${steps.ID.OUTPUT}`: an earlier step's output, resolved just before that step runs.
//!
//! `$${` writes a literal `${`.

use std::collections::BTreeMap;

/// One `${...}` reference found in a string.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reference {
    Var(String),
    Env(String),
    Step { id: String, output: String },
}

impl Reference {
    fn parse(inner: &str) -> Result<Self, String> {
        let inner = inner.trim();
        if let Some(name) = inner.strip_prefix("env.") {
            return valid_name(name).map(|n| Self::Env(n.to_string()));
        }
        if let Some(rest) = inner.strip_prefix("steps.") {
            return match rest.split_once('.') {
                Some((id, output)) if !id.is_empty() && !output.is_empty() => Ok(Self::Step {
                    id: id.to_string(),
                    output: output.to_string(),
                }),
                _ => Err(format!(
                    "`${{{inner}}}` names no output: write ${{steps.STEP_ID.OUTPUT}}"
                )),
            };
        }
        valid_name(inner).map(|n| Self::Var(n.to_string()))
    }
}

fn valid_name(name: &str) -> Result<&str, String> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(name)
    } else {
        Err(format!("`${{{name}}}` is not a valid variable name"))
    }
}

/// A piece of a template string.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece<'a> {
    Text(&'a str),
    Ref(Reference),
}

fn split(text: &str) -> Result<Vec<Piece<'_>>, String> {
    let mut pieces = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        if start > 0 && rest[..start].ends_with('$') {
            // `$${` escapes: keep one `$` and the brace, then go on after it.
            pieces.push(Piece::Text(&rest[..start - 1]));
            pieces.push(Piece::Text("${"));
            rest = &rest[start + 2..];
            continue;
        }
        pieces.push(Piece::Text(&rest[..start]));
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| format!("unclosed `${{` in {text:?}"))?;
        pieces.push(Piece::Ref(Reference::parse(&after[..end])?));
        rest = &after[end + 1..];
    }
    pieces.push(Piece::Text(rest));
    Ok(pieces)
}

/// Every reference in `text`, or the first syntax problem.
pub fn references(text: &str) -> Result<Vec<Reference>, String> {
    Ok(split(text)?
        .into_iter()
        .filter_map(|p| match p {
            Piece::Ref(r) => Some(r),
            Piece::Text(_) => None,
        })
        .collect())
}

/// The scenario variables `${NAME}` a whole file's text uses, line by line (a line with a
/// malformed reference is reported elsewhere and contributes none).
pub fn referenced_names(text: &str) -> Vec<String> {
    text.lines()
        .flat_map(|line| references(line).unwrap_or_default())
        .filter_map(|r| match r {
            Reference::Var(name) => Some(name),
            _ => None,
        })
        .collect()
}

/// Whether `text` is exactly one `${NAME}` or `${env.NAME}` and nothing else.
pub fn is_single_static_reference(text: &str) -> bool {
    matches!(
        split(text).as_deref(),
        Ok([
            Piece::Text(""),
            Piece::Ref(Reference::Var(_) | Reference::Env(_)),
            Piece::Text("")
        ])
    )
}

/// Resolves load-time references.
pub struct StaticScope<'a> {
    pub vars: &'a BTreeMap<String, String>,
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

/// Replace `${NAME}` and `${env.NAME}`; leave `${steps...}` for run time.
pub fn substitute_static(text: &str, scope: &StaticScope<'_>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    for piece in split(text)? {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Ref(Reference::Var(name)) => match scope.vars.get(&name) {
                Some(value) => out.push_str(value),
                None => {
                    return Err(format!(
                        "undefined variable `${{{name}}}`: define it under `vars:` or pass --var {name}=VALUE"
                    ))
                }
            },
            Piece::Ref(Reference::Env(name)) => match (scope.env)(&name) {
                Some(value) => out.push_str(&value),
                None => {
                    return Err(format!(
                        "environment variable {name} is not set (referenced as `${{env.{name}}}`)"
                    ))
                }
            },
            Piece::Ref(Reference::Step { id, output }) => {
                out.push_str(&format!("${{steps.{id}.{output}}}"));
            }
        }
    }
    Ok(out)
}

/// Outputs of the steps that have run, by step id.
pub type StepOutputs = BTreeMap<String, BTreeMap<String, serde_json::Value>>;

/// Replace `${steps.ID.OUTPUT}` in a string. A string that is exactly one reference becomes the
/// output's own JSON value (a number stays a number).
pub fn substitute_runtime(text: &str, outputs: &StepOutputs) -> Result<serde_json::Value, String> {
    let pieces = split(text)?;
    let lookup = |id: &str, output: &str| {
        outputs.get(id).and_then(|o| o.get(output)).ok_or_else(|| {
            format!("`${{steps.{id}.{output}}}` has no value: did step {id:?} run and succeed?")
        })
    };
    if let [Piece::Text(""), Piece::Ref(Reference::Step { id, output }), Piece::Text("")] =
        pieces.as_slice()
    {
        return lookup(id, output).cloned();
    }
    let mut out = String::new();
    for piece in pieces {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Ref(Reference::Step { id, output }) => match lookup(&id, &output)? {
                serde_json::Value::String(s) => out.push_str(s),
                other => out.push_str(&other.to_string()),
            },
            Piece::Ref(other) => return Err(format!("unresolved reference {other:?}")),
        }
    }
    Ok(serde_json::Value::String(out))
}

/// Apply [`substitute_runtime`] to every string in a YAML value.
pub fn substitute_runtime_value(
    value: &serde_yaml::Value,
    outputs: &StepOutputs,
) -> Result<serde_yaml::Value, String> {
    use serde_yaml::Value as Y;
    Ok(match value {
        Y::String(s) if s.contains("${") => {
            serde_yaml::to_value(substitute_runtime(s, outputs)?).map_err(|e| e.to_string())?
        }
        Y::Sequence(items) => Y::Sequence(
            items
                .iter()
                .map(|v| substitute_runtime_value(v, outputs))
                .collect::<Result<_, _>>()?,
        ),
        Y::Mapping(map) => Y::Mapping(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), substitute_runtime_value(v, outputs)?)))
                .collect::<Result<_, String>>()?,
        ),
        other => other.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope_with<'a>(
        vars: &'a BTreeMap<String, String>,
        env: &'a dyn Fn(&str) -> Option<String>,
    ) -> StaticScope<'a> {
        StaticScope { vars, env }
    }

    #[test]
    fn static_substitution_resolves_vars_and_env_and_keeps_step_refs() {
        let vars = BTreeMap::from([("port".to_string(), "8765".to_string())]);
        let env = |name: &str| (name == "HOME").then(|| "/home/x".to_string());
        let scope = scope_with(&vars, &env);
        assert_eq!(
            substitute_static("http://h:${port}/${env.HOME}/${steps.a.b}", &scope).unwrap(),
            "http://h:8765//home/x/${steps.a.b}"
        );
        assert!(substitute_static("${nope}", &scope)
            .unwrap_err()
            .contains("undefined variable"));
        assert!(substitute_static("${env.NOPE}", &scope)
            .unwrap_err()
            .contains("NOPE"));
        assert!(substitute_static("${port", &scope)
            .unwrap_err()
            .contains("unclosed"));
        assert_eq!(
            substitute_static("cost $${x}", &scope).unwrap(),
            "cost ${x}"
        );
    }

    #[test]
    fn runtime_substitution_keeps_types_for_whole_references() {
        let outputs: StepOutputs = BTreeMap::from([(
            "count".to_string(),
            BTreeMap::from([("total".to_string(), json!(42))]),
        )]);
        assert_eq!(
            substitute_runtime("${steps.count.total}", &outputs).unwrap(),
            json!(42)
        );
        assert_eq!(
            substitute_runtime("n=${steps.count.total}", &outputs).unwrap(),
            json!("n=42")
        );
        assert!(substitute_runtime("${steps.other.total}", &outputs).is_err());
    }
}
