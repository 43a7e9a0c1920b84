//! `vecdrill validate`: every kind of malformed scenario is reported at its line and column,
//! with exit code 2, and a valid scenario passes.

use crate::common::vecdrill;

const HEADER: &str = "name: t\ntarget:\n  kind: chroma\n  url: http://127.0.0.1:1\n";

/// (what is wrong, the scenario, expected line, expected column, words the message must hold)
fn cases() -> Vec<(&'static str, String, usize, usize, &'static str)> {
    let with_steps = |steps: &str| format!("{HEADER}steps:\n{steps}");
    vec![
        ("yaml syntax", format!("{HEADER}steps: [ {{ do: heartbeat }}\n  - x\n"), 6, 0, "YAML syntax"),
        ("unknown top-level key", format!("{HEADER}stepz:\n  - {{ do: heartbeat }}\n"), 5, 1, "did you mean `steps`"),
        ("unknown step kind", with_steps("  - { do: heartbeet }\n"), 6, 11, "unknown step kind `heartbeet` (did you mean `heartbeat`?)"),
        ("unknown step key", with_steps("  - { do: heartbeat, retry: 2 }\n"), 6, 22, "unknown step key `retry`"),
        ("wrong type", with_steps("  - { do: heartbeat, retries: three }\n"), 6, 31, "retries: invalid type"),
        ("bad duration", with_steps("  - do: sleep\n    with: { duration: 5 minutes please }\n"), 7, 23, "bad duration"),
        ("undefined variable", with_steps("  - { do: shell, with: { command: \"echo ${nope}\" } }\n"), 6, 35, "undefined variable `${nope}`"),
        ("undefined step reference", with_steps("  - { do: shell, with: { command: \"echo ${steps.missing.total}\" } }\n"), 6, 35, "refers to no earlier step with id \"missing\""),
        ("unknown step output", with_steps("  - { id: c, do: count }\n  - { do: shell, with: { command: \"echo ${steps.c.bogus}\" } }\n"), 7, 35, "has no output \"bogus\""),
        ("missing step parameter", with_steps("  - { do: sleep }\n"), 6, 5, "missing field `duration`"),
        ("unknown step parameter", with_steps("  - { do: heartbeat, with: { timout: 5s } }\n"), 6, 30, "unknown field `timout`"),
        ("duplicate step id", with_steps("  - { id: a, do: heartbeat }\n  - { id: a, do: heartbeat }\n"), 7, 11, "duplicate step id \"a\""),
        ("rto without marks", format!("{HEADER}objectives: {{ rto: 5m }}\nsteps:\n  - {{ do: heartbeat }}\n"), 5, 15, "needs one step with `mark: disaster`"),
        ("service step without a service", with_steps("  - { do: restart }\n"), 6, 5, "has no `service:`"),
        ("bad mark", with_steps("  - { do: heartbeat, mark: recovred }\n"), 6, 28, "unknown variant `recovred`"),
        ("duplicate key", format!("{HEADER}name: again\nsteps:\n  - {{ do: heartbeat }}\n"), 5, 1, "duplicate key \"name\""),
        ("missing target", "name: t\nsteps:\n  - { do: heartbeat }\n".to_string(), 1, 1, "missing `target:`"),
        ("unset environment variable", with_steps("  - { do: shell, with: { command: \"${env.VECDRILL_SURELY_UNSET}\" } }\n"), 6, 35, "VECDRILL_SURELY_UNSET is not set"),
        ("fault of an unknown kind", with_steps("  - { do: fault, with: { kind: explode } }\n"), 6, 32, "unknown variant `explode`"),
        ("objective of the wrong type", format!("{HEADER}objectives: {{ collections_min: lots }}\nsteps:\n  - {{ do: count }}\n"), 5, 32, "collections_min: invalid type"),
        ("relative objective with a misspelt key", format!("{HEADER}objectives: {{ search_p90: {{ max_regresion: 20% }} }}\nsteps:\n  - {{ do: search_latency }}\n"), 5, 29, "unknown field `max_regresion`, expected `max` or `max_regression`"),
        ("relative objective with no limit", format!("{HEADER}objectives: {{ search_p90: {{}} }}\nsteps:\n  - {{ do: search_latency }}\n"), 5, 27, "give `max`, `max_regression` or both"),
        ("baseline share that is not a percentage", format!("{HEADER}objectives: {{ count: {{ min_of_baseline: lots }} }}\nsteps:\n  - {{ do: count }}\n"), 5, 41, "expected a percentage such as 20%"),
        ("count objective with nothing counting", format!("{HEADER}objectives: {{ count: {{ min_of_baseline: 99% }} }}\nsteps:\n  - {{ do: heartbeat }}\n"), 5, 15, "objective `count` needs a `count`"),
        ("notify without a webhook", format!("{HEADER}notify: {{ on: failure }}\nsteps:\n  - {{ do: count }}\n"), 5, 9, "notify: missing field `webhook`"),
        ("a chroma step on a faiss_redis target", "name: t\ntarget:\n  kind: faiss_redis\n  url: redis://127.0.0.1:1\nsteps:\n  - { do: wait_healthy }\n  - { id: c, do: count }\n".to_string(), 7, 5, "step \"c\" (count) works on chroma targets, not on this `faiss_redis` target"),
        ("a faiss field on a chroma target", "name: t\ntarget:\n  kind: chroma\n  url: http://127.0.0.1:1\n  faiss: [a.faiss]\nsteps:\n  - { do: heartbeat }\n".to_string(), 5, 3, "target.faiss: unknown field `faiss`"),
        ("a target of an unknown kind", "name: t\ntarget:\n  kind: pinecone\n  url: http://127.0.0.1:1\nsteps:\n  - { do: heartbeat }\n".to_string(), 3, 9, "target.kind: unknown variant `pinecone`"),
        ("a faiss step on a chroma target", with_steps("  - { do: check_faiss }\n"), 6, 5, "works on faiss_redis targets, not on this `chroma` target"),
        ("notify at an unknown moment", format!("{HEADER}notify: {{ webhook: \"http://x\", on: sometimes }}\nsteps:\n  - {{ do: count }}\n"), 5, 36, "unknown variant `sometimes`, expected `failure` or `always`"),
    ]
}

#[test]
fn malformed_scenarios_are_reported_at_their_line_and_column() {
    let tmp = tempfile::tempdir().unwrap();
    let mut kinds = 0;
    for (what, text, line, col, words) in cases() {
        let path = tmp.path().join(format!("{}.yaml", what.replace(' ', "-")));
        std::fs::write(&path, &text).unwrap();
        let run = vecdrill(["validate", path.to_str().unwrap()]);
        run.expect_code(2);
        let stdout = run.stdout();
        let location = if col == 0 {
            format!("{}:{line}:", path.display())
        } else {
            format!("{}:{line}:{col}: ", path.display())
        };
        let line_found = stdout.lines().find(|l| l.starts_with(&location));
        assert!(
            line_found.is_some_and(|l| l.contains(words)),
            "{what}: expected `{location}` with {words:?}\n--- scenario\n{text}\n--- got\n{stdout}"
        );
        kinds += 1;
    }
    assert!(kinds >= 10);
}

#[test]
fn every_problem_in_a_file_is_reported_not_just_the_first() {
    let tmp = tempfile::tempdir().unwrap();
    let path = tmp.path().join("many.yaml");
    let text = format!("{HEADER}steps:\n  - {{ do: heartbeet }}\n  - {{ do: sleep, with: {{ duration: soon }} }}\n  - {{ do: shell, with: {{ command: \"${{nope}}\" }} }}\n");
    std::fs::write(&path, text).unwrap();
    let run = vecdrill(["validate", path.to_str().unwrap(), "--json"]);
    run.expect_code(2);
    let report = run.json();
    let problems = report["files"][0]["problems"].as_array().unwrap();
    assert_eq!(problems.len(), 3, "{report:#}");
    for (problem, line) in problems.iter().zip([6, 7, 8]) {
        assert!(
            problem.as_str().unwrap().contains(&format!(":{line}:")),
            "{problem}"
        );
    }
}

#[test]
fn shipped_scenarios_are_valid_and_vars_can_be_overridden() {
    let root = crate::common::project_root();
    let mut scenarios: Vec<String> = std::fs::read_dir(root.join("scenarios"))
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| p.display().to_string())
        .collect();
    assert!(!scenarios.is_empty());
    scenarios.insert(0, "validate".into());
    vecdrill(&scenarios).expect_code(0);

    // `--var` wins over `vars:`; a value that is exactly one reference keeps its type.
    let run = vecdrill([
        "run",
        "scenarios/restart.yaml",
        "--dry-run",
        "--var",
        "port=9999",
        "--var",
        "expected_min=7",
    ]);
    run.expect_code(0);
    assert!(run.stdout().contains("{\"min\":7}"), "{}", run.stdout());
    let run = vecdrill([
        "run",
        "scenarios/restart.yaml",
        "--dry-run",
        "--var",
        "expected_min=many",
    ]);
    run.expect_code(2);
    assert!(run.stderr().contains("invalid type"), "{}", run.stderr());
}

#[test]
fn issue_15_8_hostile_scenario_files_are_bounded_and_reported_with_a_position() {
    let tmp = tempfile::tempdir().unwrap();
    let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
    for i in 1..10 {
        let refs = vec![format!("*a{}", i - 1); 10].join(", ");
        bomb.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
    }
    let mut not_utf8 = format!("{HEADER}steps:\n").into_bytes();
    not_utf8.extend_from_slice(b"  - { do: sl\xffeep }\n");
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("alias bomb", bomb.into_bytes(), ":5:"),
        ("huge", vec![b'#'; 2 << 20], ":1:1: the file is larger than"),
        ("not utf8", not_utf8, ":6:13: this byte is not UTF-8"),
        (
            "duration past 2^64 s",
            format!(
                "{HEADER}steps:\n  - {{ do: sleep, with: {{ duration: 18446744073709551616 }} }}\n"
            )
            .into_bytes(),
            "duration",
        ),
    ];
    for (what, bytes, words) in cases {
        let path = tmp.path().join(format!("{}.yaml", what.replace(' ', "-")));
        std::fs::write(&path, bytes).unwrap();
        let run = vecdrill(["validate", path.to_str().unwrap()]);
        run.expect_code(2);
        let output = format!("{}{}", run.stdout(), run.stderr());
        assert!(
            output.contains(words),
            "{what}: expected {words:?} in\n{output}"
        );
    }
}
