//! Loading and validating a scenario file, collecting every problem with its position.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use serde::de::DeserializeOwned;

use super::vars::{self, Reference, StaticScope};
use super::yaml::{self, Node, Pos};
use super::{
    Diagnostic, Mark, Objectives, Scenario, ScenarioError, StepSpec, TargetKind, TargetSpec,
};
use crate::steps::{self, Objective};

const TOP_LEVEL_KEYS: &[&str] = &[
    "name",
    "description",
    "vars",
    "target",
    "repo",
    "objectives",
    "steps",
    "rollback",
    "notify",
];
const STEP_KEYS: &[&str] = &[
    "id",
    "do",
    "with",
    "timeout",
    "retries",
    "continue_on_error",
    "mark",
];

/// `--var` overrides and where environment variables come from.
pub struct LoadOptions<'a> {
    pub overrides: &'a [(String, String)],
    pub env: &'a dyn Fn(&str) -> Option<String>,
}

impl Default for LoadOptions<'_> {
    fn default() -> Self {
        Self {
            overrides: &[],
            env: &|name| std::env::var(name).ok(),
        }
    }
}

/// The largest scenario file read: real ones are a few KiB.
pub const MAX_SCENARIO_BYTES: u64 = 1 << 20;

pub fn load_file(path: &Path, options: &LoadOptions<'_>) -> Result<Scenario, ScenarioError> {
    let text = read_text(path)?;
    let mut scenario = load_str(&text, &path.display().to_string(), options)?;
    scenario.path = path.to_path_buf();
    Ok(scenario)
}

/// A scenario file's text: at most [`MAX_SCENARIO_BYTES`], and UTF-8 (a bad byte is reported
/// at its line and column).
fn read_text(path: &Path) -> Result<String, ScenarioError> {
    use std::io::Read;
    let file = path.display().to_string();
    let read_error = |source| ScenarioError::Read {
        path: file.clone(),
        source,
    };
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_SCENARIO_BYTES + 1).read_to_end(&mut bytes))
        .map_err(read_error)?;
    let invalid = |pos: Pos, message: String| {
        ScenarioError::Invalid(vec![Diagnostic {
            file: file.clone(),
            pos,
            message,
        }])
    };
    if bytes.len() as u64 > MAX_SCENARIO_BYTES {
        return Err(invalid(
            Pos { line: 1, col: 1 },
            format!("the file is larger than {MAX_SCENARIO_BYTES} bytes; a scenario is a few KiB"),
        ));
    }
    String::from_utf8(bytes).map_err(|err| {
        let valid = &err.as_bytes()[..err.utf8_error().valid_up_to()];
        let line_start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
        let pos = Pos {
            line: 1 + valid.iter().filter(|b| **b == b'\n').count(),
            col: 1 + String::from_utf8_lossy(&valid[line_start..])
                .chars()
                .count(),
        };
        invalid(
            pos,
            "this byte is not UTF-8 text; save the file as UTF-8".into(),
        )
    })
}

pub fn load_str(
    text: &str,
    file: &str,
    options: &LoadOptions<'_>,
) -> Result<Scenario, ScenarioError> {
    let mut checker = Checker {
        file: file.to_string(),
        problems: Vec::new(),
    };
    let scenario = checker.load(text, options);
    if checker.problems.is_empty() {
        if let Some(scenario) = scenario {
            return Ok(scenario);
        }
    }
    let mut problems = checker.problems;
    problems.sort_by_key(|d| (d.pos.line, d.pos.col));
    problems.dedup();
    Err(ScenarioError::Invalid(problems))
}

struct Checker {
    file: String,
    problems: Vec<Diagnostic>,
}

impl Checker {
    fn report(&mut self, pos: Pos, message: impl Into<String>) {
        self.problems.push(Diagnostic {
            file: self.file.clone(),
            pos,
            message: message.into(),
        });
    }

    fn load(&mut self, text: &str, options: &LoadOptions<'_>) -> Option<Scenario> {
        let mut root = match yaml::parse(text) {
            Ok(root) => root,
            Err(err) => {
                self.report(err.pos, format!("YAML syntax: {}", err.message));
                return None;
            }
        };
        // Problems with the document as a whole (a missing key) are reported at its start.
        root.pos = Pos { line: 1, col: 1 };
        let Some(entries) = root.as_map() else {
            self.report(
                root.pos,
                format!(
                    "a scenario is a mapping (name:, target:, steps:, ...), found {}",
                    root.kind_name()
                ),
            );
            return None;
        };
        for (key, _) in entries {
            let name = key.as_str().unwrap_or_default();
            if !TOP_LEVEL_KEYS.contains(&name) {
                let message = unknown_key("top-level key", name, TOP_LEVEL_KEYS);
                self.report(key.pos, message);
            }
        }

        let vars = self.vars(&root, options);
        self.refuse_unknown_overrides(&root, text, options);
        self.substitute_static(&mut root, &vars, options);

        let name = self.required_string(&root, "name");
        let description = root
            .get("description")
            .and_then(Node::as_str)
            .map(str::to_string);
        let target: Option<TargetSpec> = match root.get("target") {
            Some(node) => self.target(node),
            None => {
                self.report(
                    root.pos,
                    "missing `target:` (the database the drill works on: kind, url, service)",
                );
                None
            }
        };
        let repo = root.get("repo").and_then(Node::as_str).map(str::to_string);
        let notify = root
            .get("notify")
            .and_then(|node| self.typed(node, "notify"));
        let objectives: Objectives = match root.get("objectives") {
            Some(node) => {
                let written = node.as_map().unwrap_or_default();
                let order = written
                    .iter()
                    .filter_map(|(k, _)| k.as_str())
                    .map(str::to_string);
                Objectives {
                    order: order.collect(),
                    ..self.typed(node, "objectives").unwrap_or_default()
                }
            }
            None => Objectives::default(),
        };

        let steps = match root.get("steps") {
            Some(node) if node.as_seq().is_some_and(|s| !s.is_empty()) => self.steps(node, &[]),
            Some(node) => {
                self.report(node.pos, "`steps:` must be a non-empty list of steps");
                Vec::new()
            }
            None => {
                self.report(
                    root.pos,
                    "missing `steps:` (the list of things the drill does)",
                );
                Vec::new()
            }
        };
        let step_ids: Vec<(String, &'static steps::StepKind)> =
            steps.iter().map(|s| (s.id.clone(), s.kind)).collect();
        let rollback = match root.get("rollback") {
            Some(node) if node.as_seq().is_some() => self.steps(node, &step_ids),
            Some(node) => {
                self.report(node.pos, "`rollback:` must be a list of steps");
                Vec::new()
            }
            None => Vec::new(),
        };

        if let Some(target) = &target {
            self.check_service_needs(&steps, &rollback, target);
            self.check_target_kinds(&steps, &rollback, target);
        }
        if repo.is_none() {
            for step in steps.iter().chain(&rollback) {
                let own_repo = step.with.get("repo").is_some();
                if step.kind.needs_repo && !own_repo {
                    self.report(step.pos, format!("step {:?} ({}) needs a backup repository: add `repo:` to the scenario or the step", step.id, step.kind.name));
                }
            }
        }
        self.check_marks_and_objectives(&root, &steps, &objectives);

        Some(Scenario {
            name: name?,
            description,
            path: Default::default(),
            vars,
            target: target?,
            repo,
            objectives,
            steps,
            rollback,
            notify,
        })
    }

    /// `vars:` merged with `--var` overrides (which win). Values may use `${env.NAME}` and
    /// variables defined above them.
    fn vars(&mut self, root: &Node, options: &LoadOptions<'_>) -> BTreeMap<String, String> {
        let mut vars = BTreeMap::new();
        if let Some(node) = root.get("vars") {
            match node.as_map() {
                Some(entries) => {
                    for (key, value) in entries {
                        let Some(name) = key.as_str() else {
                            self.report(key.pos, "variable names are strings");
                            continue;
                        };
                        let text = match &value.value {
                            yaml::Value::Str(s) => s.clone(),
                            yaml::Value::Int(i) => i.to_string(),
                            yaml::Value::Float(f) => f.to_string(),
                            yaml::Value::Bool(b) => b.to_string(),
                            _ => {
                                self.report(
                                    value.pos,
                                    format!(
                                        "variable `{name}` must be a string or number, found {}",
                                        value.kind_name()
                                    ),
                                );
                                continue;
                            }
                        };
                        let scope = StaticScope {
                            vars: &vars,
                            env: options.env,
                        };
                        match vars::substitute_static(&text, &scope) {
                            Ok(resolved) => {
                                vars.insert(name.to_string(), resolved);
                            }
                            Err(message) => self.report(value.pos, message),
                        }
                    }
                }
                None => self.report(
                    node.pos,
                    format!(
                        "`vars:` must be a mapping of NAME: value, found {}",
                        node.kind_name()
                    ),
                ),
            }
        }
        for (name, value) in options.overrides {
            vars.insert(name.clone(), value.clone());
        }
        vars
    }

    /// A `--var` the scenario neither declares under `vars:` nor uses as `${NAME}` is a typo
    /// (`--var datadir=...`): accepted, it would leave the scenario on its default, reported at
    /// `vars:` (or the document's start).
    fn refuse_unknown_overrides(&mut self, root: &Node, text: &str, options: &LoadOptions<'_>) {
        let declared: Vec<&str> = root
            .get("vars")
            .and_then(Node::as_map)
            .map(|entries| entries.iter().filter_map(|(k, _)| k.as_str()).collect())
            .unwrap_or_default();
        let used = vars::referenced_names(text);
        let known: Vec<&str> = declared
            .iter()
            .copied()
            .chain(used.iter().map(String::as_str))
            .collect();
        let pos = root.get("vars").map_or(root.pos, |node| node.pos);
        for (name, _) in options.overrides {
            if !known.contains(&name.as_str()) {
                let message = unknown_key("variable (from --var)", name, &declared);
                self.report(pos, message);
            }
        }
    }

    fn substitute_static(
        &mut self,
        root: &mut Node,
        vars: &BTreeMap<String, String>,
        options: &LoadOptions<'_>,
    ) {
        let scope = StaticScope {
            vars,
            env: options.env,
        };
        let yaml::Value::Map(entries) = &mut root.value else {
            return;
        };
        for (key, value) in entries.iter_mut() {
            if key.as_str() == Some("vars") {
                continue;
            }
            let errors = value.map_strings(&mut |text, pos| {
                if !text.contains("${") {
                    return Ok(yaml::Value::Str(text.to_string()));
                }
                let resolved =
                    vars::substitute_static(text, &scope).map_err(|message| (pos, message))?;
                // A value that is exactly one load-time reference reads as if written there
                // unquoted, so `count: ${n}` is a number and `mark: ${m}` a name.
                Ok(if vars::is_single_static_reference(text) {
                    yaml::resolve_plain(&resolved)
                } else {
                    yaml::Value::Str(resolved)
                })
            });
            for (pos, message) in errors {
                self.report(pos, message);
            }
        }
    }

    fn required_string(&mut self, root: &Node, key: &str) -> Option<String> {
        match root.get(key) {
            Some(Node {
                value: yaml::Value::Str(s),
                ..
            }) if !s.trim().is_empty() => Some(s.clone()),
            Some(node) => {
                self.report(
                    node.pos,
                    format!(
                        "`{key}:` must be a non-empty string, found {}",
                        node.kind_name()
                    ),
                );
                None
            }
            None => {
                self.report(root.pos, format!("missing `{key}:`"));
                None
            }
        }
    }

    /// `target:`, read as its `kind:` says, so each kind's fields are checked at their lines.
    fn target(&mut self, node: &Node) -> Option<TargetSpec> {
        let Some(kind_node) = node.get("kind") else {
            self.report(node.pos, "target: missing field `kind`");
            return None;
        };
        let kind = self.typed::<TargetKind>(kind_node, "target.kind")?;
        self.read(node, "target", |yaml| kind.read_spec(yaml))
    }

    /// Deserialise a node into `T`, reporting serde's complaint at the node it concerns.
    fn typed<T: DeserializeOwned>(&mut self, node: &Node, what: &str) -> Option<T> {
        self.read(node, what, serde_path_to_error::deserialize::<_, T>)
    }

    /// Read a node with `read`, reporting its complaint at the node (or field) it concerns.
    fn read<T>(
        &mut self,
        node: &Node,
        what: &str,
        read: impl FnOnce(serde_yaml::Value) -> Result<T, serde_path_to_error::Error<serde_yaml::Error>>,
    ) -> Option<T> {
        match read(node.to_yaml()) {
            Ok(value) => Some(value),
            Err(err) => {
                let message = clean_serde_message(&err.inner().to_string());
                let pos = node.pos_for_error(err.path(), &message);
                let path = err.path().to_string();
                let field = if path == "." {
                    what.to_string()
                } else {
                    format!("{what}.{path}")
                };
                self.report(pos, format!("{field}: {message}"));
                None
            }
        }
    }

    fn steps(
        &mut self,
        list: &Node,
        earlier: &[(String, &'static steps::StepKind)],
    ) -> Vec<StepSpec> {
        let mut specs: Vec<StepSpec> = Vec::new();
        let mut known: Vec<(String, &'static steps::StepKind)> = earlier.to_vec();
        let mut seen_ids = HashSet::new();
        let mut auto_counts: BTreeMap<&str, usize> = BTreeMap::new();
        for node in list.as_seq().unwrap_or_default() {
            let Some(entries) = node.as_map() else {
                self.report(
                    node.pos,
                    format!(
                        "a step is a mapping like `{{ do: heartbeat }}`, found {}",
                        node.kind_name()
                    ),
                );
                continue;
            };
            for (key, _) in entries {
                let name = key.as_str().unwrap_or_default();
                if !STEP_KEYS.contains(&name) {
                    let message = unknown_key("step key", name, STEP_KEYS);
                    self.report(key.pos, message);
                }
            }
            let kind = match node.get("do") {
                Some(Node {
                    value: yaml::Value::Str(name),
                    pos,
                }) => match steps::lookup(name) {
                    Some(kind) => Some(kind),
                    None => {
                        let names: Vec<&str> = steps::KINDS.iter().map(|k| k.name).collect();
                        self.report(*pos, unknown_key("step kind", name, &names));
                        None
                    }
                },
                Some(other) => {
                    self.report(
                        other.pos,
                        format!("`do:` names a step kind, found {}", other.kind_name()),
                    );
                    None
                }
                None => {
                    self.report(node.pos, "step has no `do:` (which kind of step is it?)");
                    None
                }
            };
            let id = match node.get("id") {
                Some(Node {
                    value: yaml::Value::Str(id),
                    pos,
                }) => {
                    if !seen_ids.insert(id.clone()) || earlier.iter().any(|(e, _)| e == id) {
                        self.report(*pos, format!("duplicate step id {id:?}"));
                    }
                    Some(id.clone())
                }
                Some(other) => {
                    self.report(
                        other.pos,
                        format!("`id:` must be a string, found {}", other.kind_name()),
                    );
                    None
                }
                None => None,
            };
            let timeout = node.get("timeout").and_then(|n| self.typed(n, "timeout"));
            let retries = node
                .get("retries")
                .and_then(|n| self.typed(n, "retries"))
                .unwrap_or(0);
            let continue_on_error = node
                .get("continue_on_error")
                .and_then(|n| self.typed(n, "continue_on_error"))
                .unwrap_or(false);
            let mark: Option<Mark> = node.get("mark").and_then(|n| self.typed(n, "mark"));
            let with_node = node.get("with");
            if let Some(with) = with_node {
                if !matches!(with.value, yaml::Value::Map(_) | yaml::Value::Null) {
                    self.report(
                        with.pos,
                        format!(
                            "`with:` holds the step's parameters as a mapping, found {}",
                            with.kind_name()
                        ),
                    );
                }
            }
            self.check_step_references(node, &known);
            let Some(kind) = kind else { continue };
            let with = with_node
                .map(Node::to_yaml)
                .unwrap_or(serde_yaml::Value::Null);
            if let Err(err) = (kind.build)(with.clone()) {
                let at = with_node.map(|w| w.at_path(err.path())).unwrap_or(node);
                // A value filled in at run time cannot be type-checked now.
                if !at
                    .strings()
                    .iter()
                    .any(|s| s.as_str().is_some_and(|t| t.contains("${steps.")))
                {
                    let message = clean_serde_message(&err.inner().to_string());
                    let pos = with_node
                        .map(|w| w.pos_for_error(err.path(), &message))
                        .unwrap_or(at.pos);
                    let path = err.path().to_string();
                    let field = if path == "." {
                        String::new()
                    } else {
                        format!(".{path}")
                    };
                    self.report(pos, format!("{} with{field}: {message}", kind.name));
                }
            }
            let id = id.unwrap_or_else(|| {
                let n = auto_counts.entry(kind.name).or_insert(0);
                *n += 1;
                if *n == 1 {
                    kind.name.to_string()
                } else {
                    format!("{}-{n}", kind.name)
                }
            });
            known.push((id.clone(), kind));
            specs.push(StepSpec {
                id,
                kind,
                with,
                timeout,
                retries,
                continue_on_error,
                mark,
                pos: node.pos,
            });
        }
        specs
    }

    /// `${steps.ID.OUTPUT}` must name a step that runs earlier and an output that kind has.
    fn check_step_references(&mut self, step: &Node, known: &[(String, &'static steps::StepKind)]) {
        for string in step.strings() {
            let Some(text) = string.as_str() else {
                continue;
            };
            if !text.contains("${") {
                continue;
            }
            let references = match vars::references(text) {
                Ok(r) => r,
                Err(message) => {
                    self.report(string.pos, message);
                    continue;
                }
            };
            for reference in references {
                let Reference::Step { id, output } = reference else {
                    continue;
                };
                match known.iter().find(|(k, _)| *k == id) {
                    None => self.report(
                        string.pos,
                        format!(
                            "`${{steps.{id}.{output}}}` refers to no earlier step with id {id:?}"
                        ),
                    ),
                    Some((_, kind)) if !kind.has_output(&output) => self.report(
                        string.pos,
                        format!(
                            "step {id:?} ({}) has no output {output:?}; it has: {}",
                            kind.name,
                            kind.all_outputs().join(", ")
                        ),
                    ),
                    Some(_) => {}
                }
            }
        }
    }

    fn check_service_needs(
        &mut self,
        steps: &[StepSpec],
        rollback: &[StepSpec],
        target: &TargetSpec,
    ) {
        if target.service().is_some() {
            return;
        }
        for step in steps.iter().chain(rollback) {
            if step.kind.needs_service {
                self.report(
                    step.pos,
                    format!(
                        "step {:?} ({}) controls the service, but `target:` has no `service:`",
                        step.id, step.kind.name
                    ),
                );
            }
        }
    }

    /// Every step's kind works on the scenario's target (a `count` step would call Chroma's
    /// API on a Redis URL).
    fn check_target_kinds(
        &mut self,
        steps: &[StepSpec],
        rollback: &[StepSpec],
        target: &TargetSpec,
    ) {
        for step in steps.iter().chain(rollback) {
            if !step.kind.targets.contains(&target.kind()) {
                let works_on: Vec<&str> = step.kind.targets.iter().map(|k| k.name()).collect();
                self.report(
                    step.pos,
                    format!(
                        "step {:?} ({}) works on {} targets, not on this `{}` target",
                        step.id,
                        step.kind.name,
                        works_on.join(" and "),
                        target.kind().name()
                    ),
                );
            }
        }
    }

    fn check_marks_and_objectives(
        &mut self,
        root: &Node,
        steps: &[StepSpec],
        objectives: &Objectives,
    ) {
        let position = |mark: Mark| steps.iter().position(|s| s.mark == Some(mark));
        for mark in [Mark::Disaster, Mark::Recovered] {
            let marked: Vec<&StepSpec> = steps.iter().filter(|s| s.mark == Some(mark)).collect();
            if marked.len() > 1 {
                self.report(
                    marked[1].pos,
                    format!("only one step may carry `mark: {}`", mark_name(mark)),
                );
            }
        }
        let objective_pos = |name: &str| {
            root.get("objectives")
                .and_then(|o| o.entry(name))
                .map(|(k, _)| k.pos)
                .unwrap_or(root.pos)
        };
        match (position(Mark::Disaster), position(Mark::Recovered)) {
            (Some(d), Some(r)) if r < d => {
                self.report(
                    steps[r].pos,
                    "the `recovered` mark comes before the `disaster` mark",
                );
            }
            (d, r) if objectives.rto.is_some() && (d.is_none() || r.is_none()) => {
                self.report(
                    objective_pos("rto"),
                    "objective `rto` needs one step with `mark: disaster` and a later one with `mark: recovered`",
                );
            }
            _ => {}
        }
        let measured =
            |objective: Objective| steps.iter().any(|s| s.kind.measures.contains(&objective));
        let search_objectives = [
            ("search_p50", objectives.search_p50, Objective::SearchP50),
            ("search_p90", objectives.search_p90, Objective::SearchP90),
            ("search_p99", objectives.search_p99, Objective::SearchP99),
        ];
        for (name, value, objective) in search_objectives {
            if value.is_some() && !measured(objective) {
                self.report(
                    objective_pos(name),
                    format!("objective `{name}` needs a `search_latency` step to measure it"),
                );
            }
        }
        if objectives.rpo.is_some()
            && (!measured(Objective::Rpo) || position(Mark::Disaster).is_none())
        {
            self.report(
                objective_pos("rpo"),
                "objective `rpo` needs a step with `mark: disaster` and a `restore` step (RPO is the restored backup's age at the disaster)",
            );
        }
        if objectives.heartbeat_within.is_some() && !measured(Objective::HeartbeatWithin) {
            self.report(
                objective_pos("heartbeat_within"),
                "objective `heartbeat_within` needs a `heartbeat` or `wait_healthy` step to measure it",
            );
        }
        let counted_objectives = [
            (
                "collections_min",
                objectives.collections_min.is_some(),
                Objective::CollectionsMin,
            ),
            ("count", objectives.count.is_some(), Objective::Count),
        ];
        for (name, present, objective) in counted_objectives {
            if present && !measured(objective) {
                self.report(
                    objective_pos(name),
                    format!("objective `{name}` needs a `count`, `capture_state` or `compare_state` step to measure it"),
                );
            }
        }
    }
}

fn mark_name(mark: Mark) -> &'static str {
    match mark {
        Mark::Disaster => "disaster",
        Mark::Recovered => "recovered",
    }
}

fn unknown_key(what: &str, name: &str, known: &[&str]) -> String {
    let suggestion = known
        .iter()
        .map(|k| (strsim::levenshtein(name, k), k))
        .filter(|(d, _)| *d <= 3)
        .min()
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default();
    format!(
        "unknown {what} `{name}`{suggestion}; expected one of: {}",
        known.join(", ")
    )
}

/// serde_yaml appends its own (meaningless here) position; ours is better.
fn clean_serde_message(message: &str) -> String {
    match message.find(" at line ") {
        Some(i) => message[..i].to_string(),
        None => message.to_string(),
    }
}
