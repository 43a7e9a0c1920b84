//! The reports a drill writes for CI and for people: `report.junit.xml`, read back with an XML
//! parser, and `report.html`, opened in headless Chromium, which must show the page without a
//! console error or a single resource load.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::{chroma_bin, free_port, run_scenario, seeded_data_dir};

/// A short restart drill on a Chroma process: state captured before a kill (`disaster`) and
/// compared after the restart (`recovered`), counts, 50 latency queries, and one objective
/// (`search_p99: 1us`) that no server meets, so the run fails on purpose.
fn scenario(dir: &Path, data: &Path, port: u16) -> PathBuf {
    let text = format!(
        "name: report-files\n\
         description: Kill Chroma, bring it back, and write every report.\n\
         target:\n  kind: chroma\n  url: http://127.0.0.1:{port}\n  data_dir: {data}\n  \
         service: {{ kind: process, command: \"{chroma} run --path {data} --port {port}\" }}\n\
         objectives: {{ collections_min: 100, search_p99: 1us, rto: 2m, search_p90: 30s }}\n\
         steps:\n\
         \x20 - {{ do: start }}\n\
         \x20 - {{ id: up, do: wait_healthy, with: {{ timeout: 60s }} }}\n\
         \x20 - {{ id: before, do: capture_state, with: {{ probes: 5, k: 5 }} }}\n\
         \x20 - {{ id: crash, do: fault, with: {{ kind: kill }}, mark: disaster }}\n\
         \x20 - {{ id: again, do: start }}\n\
         \x20 - {{ id: back, do: wait_healthy, with: {{ timeout: 90s }} }}\n\
         \x20 - {{ id: verify, do: compare_state, with: {{ against: before, min_overlap: 0.8 }}, mark: recovered }}\n\
         \x20 - {{ id: counts, do: count, with: {{ min: 100 }} }}\n\
         \x20 - {{ id: latency, do: search_latency, with: {{ queries: 50, concurrency: 2, k: 5 }} }}\n\
         rollback:\n\
         \x20 - {{ do: start, continue_on_error: true }}\n",
        data = data.display(),
        chroma = chroma_bin().display(),
    );
    let path = dir.join("scenario.yaml");
    std::fs::write(&path, text).expect("write scenario");
    path
}

#[test]
fn a_drill_writes_junit_and_html_reports_that_ci_and_a_browser_read() {
    let tmp = tempfile::tempdir().unwrap();
    let data = seeded_data_dir(tmp.path(), &[("docs", 400, 16)]);
    let path = scenario(tmp.path(), &data, free_port());
    let run = run_scenario(&path, &tmp.path().join("reports"), &[], &[]);
    run.expect_code(1);
    let report = run.json();
    let run_dir = PathBuf::from(report["run_dir"].as_str().expect("run_dir"));

    check_junit(&report, &run_dir.join("report.junit.xml"));
    check_html(&report, &run_dir.join("report.html"));
    // The Markdown and HTML tables list the objectives in the scenario's order too.
    for file in ["report.md", "report.html"] {
        let text = std::fs::read_to_string(run_dir.join(file)).unwrap();
        let at: Vec<usize> = ["collections_min", "search_p99", "rto", "search_p90"]
            .iter()
            .map(|name| {
                text.find(name)
                    .unwrap_or_else(|| panic!("{file}: no {name}"))
            })
            .collect();
        assert!(at.windows(2).all(|w| w[0] < w[1]), "{file}: {at:?}");
    }
}

fn check_junit(report: &Value, path: &Path) {
    let xml = std::fs::read_to_string(path).expect("report.junit.xml is written");
    let doc = roxmltree::Document::parse(&xml)
        .unwrap_or_else(|e| panic!("report.junit.xml is not XML: {e}\n{xml}"));
    let suite = doc
        .descendants()
        .find(|n| n.has_tag_name("testsuite"))
        .expect("a testsuite");
    assert_eq!(suite.attribute("name"), Some("report-files"));
    let cases: Vec<_> = suite
        .children()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let case = |classname: &str, name: &str| {
        cases
            .iter()
            .copied()
            .find(|c| {
                c.attribute("classname") == Some(classname) && c.attribute("name") == Some(name)
            })
            .unwrap_or_else(|| panic!("no testcase {classname}.{name} in\n{xml}"))
    };

    let objectives = report["objectives"].as_array().expect("objectives");
    let steps: Vec<&Value> = report["steps"]
        .as_array()
        .into_iter()
        .chain(report["rollback"].as_array())
        .flatten()
        .collect();
    assert_eq!(objectives.len(), 4, "{report:#}");
    // In the order the scenario writes them, in every format (the others list these).
    let names: Vec<&str> = objectives
        .iter()
        .map(|o| o["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["collections_min", "search_p99", "rto", "search_p90"]
    );
    assert_eq!(cases.len(), objectives.len() + steps.len(), "{xml}");

    for objective in objectives {
        let name = objective["name"].as_str().unwrap();
        let testcase = case("objectives", name);
        match objective["passed"].as_bool() {
            Some(false) => {
                let failure =
                    failure(testcase).unwrap_or_else(|| panic!("{name} has no <failure>"));
                let detail = objective["detail"].as_str().unwrap();
                assert!(
                    failure
                        .attribute("message")
                        .is_some_and(|m| m.contains(detail)),
                    "{name}: the failure message does not carry the detail {detail:?}\n{xml}"
                );
            }
            _ => assert!(
                failure(testcase).is_none(),
                "{name} passed but has a <failure>"
            ),
        }
    }
    let p99 = objectives
        .iter()
        .find(|o| o["name"] == "search_p99")
        .unwrap();
    assert_eq!(p99["passed"], false, "1us is out of reach: {p99}");
    for step in &steps {
        let name = format!(
            "{} ({})",
            step["id"].as_str().unwrap(),
            step["kind"].as_str().unwrap()
        );
        let classname = step["phase"].as_str().unwrap();
        let testcase = case(classname, &name);
        assert_eq!(
            failure(testcase).is_some(),
            step["status"] == "failed",
            "{name}"
        );
    }
    let failures = doc
        .descendants()
        .filter(|n| n.has_tag_name("failure"))
        .count();
    assert_eq!(failures, 1, "only search_p99 fails:\n{xml}");
    assert_eq!(
        suite.attribute("failures"),
        Some(failures.to_string().as_str())
    );
}

fn check_html(report: &Value, path: &Path) {
    let load = load_in_chromium(path);
    let problems = page_problems(&load.stderr, &load.url);
    assert!(
        problems.is_empty(),
        "report.html is not clean in Chromium:\n{}\n--- stderr\n{}",
        problems.join("\n"),
        load.stderr
    );
    let dom = &load.dom;
    assert!(dom.contains("id=\"objectives\""), "{dom}");
    for objective in report["objectives"].as_array().unwrap() {
        let name = objective["name"].as_str().unwrap();
        assert!(
            dom.contains(&format!("<td>{name}</td>")),
            "objective {name} not shown"
        );
    }
    let timeline = svg(dom, "timeline");
    assert!(
        timeline.contains(">disaster</text>") && timeline.contains(">recovered</text>"),
        "{timeline}"
    );
    let latency = svg(dom, "latency");
    assert!(latency.contains("p99 "), "{latency}");
}

fn failure<'a, 'i>(testcase: roxmltree::Node<'a, 'i>) -> Option<roxmltree::Node<'a, 'i>> {
    testcase.children().find(|n| n.has_tag_name("failure"))
}

/// The `<svg id="ID">…</svg>` in a page.
fn svg<'a>(dom: &'a str, id: &str) -> &'a str {
    let start = dom
        .find(&format!("<svg id=\"{id}\""))
        .unwrap_or_else(|| panic!("no svg {id} in the page:\n{dom}"));
    let end = dom[start..].find("</svg>").expect("the svg is closed");
    &dom[start..start + end]
}

struct PageLoad {
    url: String,
    dom: String,
    stderr: String,
}

/// Chromium's own requests (sign-in, component and clock updates), made whatever the page;
/// host, path prefix.
const CHROMIUM_OWN_REQUESTS: &[&str] = &[
    "accounts.google.com/ListAccounts",
    "clients2.google.com/time/",
    "update.googleapis.com/service/update2/",
];

/// Open `page` in headless Chromium and dump its DOM once loaded. Besides the console, the
/// log shows every file and network request (`--vmodule` for the two loaders), and no host name
/// resolves, so nothing leaves the machine. Killed after 60 s.
fn load_in_chromium(page: &Path) -> PageLoad {
    let chromium = PathBuf::from("/usr/bin/chromium");
    assert!(
        chromium.exists(),
        "Chromium is not installed at /usr/bin/chromium: run `bash .ci/setup` (apt chromium)"
    );
    let scratch = tempfile::tempdir().unwrap();
    let url = format!("file://{}", page.display());
    let (out, err) = (scratch.path().join("dom"), scratch.path().join("stderr"));
    let mut child = Command::new(chromium)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--enable-logging=stderr",
            "--v=0",
            "--vmodule=file_url_loader_factory=1,network_delegate=1",
        ])
        .arg(format!(
            "--user-data-dir={}",
            scratch.path().join("profile").display()
        ))
        .args(["--dump-dom", &url])
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out).unwrap())
        .stderr(std::fs::File::create(&err).unwrap())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for chromium") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "Chromium did not finish loading {url} within 60s\n--- stderr\n{}",
                std::fs::read_to_string(&err).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let load = PageLoad {
        url,
        dom: std::fs::read_to_string(&out).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err).unwrap_or_default(),
    };
    assert!(
        status.success() && !load.dom.is_empty(),
        "Chromium failed ({status}) on {}\n--- stderr\n{}",
        load.url,
        load.stderr
    );
    load
}

/// What Chromium's log says went wrong with the page at `page_url`, found by experiment on
/// Chromium 156 (`--enable-logging=stderr --v=0`):
/// - every console message is a `:CONSOLE:LINE]` line, `"text", source: URL (LINE)`, at the
///   same `INFO` level whether it came from `console.log`, `console.error` or an uncaught
///   exception, and Content-Security-Policy refusals are console messages too. The page has no
///   script, so any console line is an error;
/// - a resource that fails to load logs nothing at all, on the console or elsewhere, so the
///   loaders are made to log each request instead: `FileURLLoader::Start: URL` for files and
///   `NetworkDelegate::NotifyBeforeURLRequest: URL` for the network. A self-contained page
///   requests nothing but itself, so any other request is a problem, found or not.
fn page_problems(stderr: &str, page_url: &str) -> Vec<String> {
    let mut problems = Vec::new();
    for line in stderr.lines() {
        if line.contains(":CONSOLE") {
            problems.push(format!("console: {line}"));
        } else if let Some(url) = requested(line, "FileURLLoader::Start: ") {
            if url != page_url {
                problems.push(format!("loads a file: {url}"));
            }
        } else if let Some(url) = requested(line, "NotifyBeforeURLRequest: ") {
            let address = url.split_once("://").map_or(url, |(_, rest)| rest);
            if !CHROMIUM_OWN_REQUESTS
                .iter()
                .any(|own| address.starts_with(own))
            {
                problems.push(format!("requests from the network: {url}"));
            }
        }
    }
    problems
}

fn requested<'a>(line: &'a str, marker: &str) -> Option<&'a str> {
    line.split_once(marker).map(|(_, url)| url.trim())
}

/// The check above can fail: a page with a console error, a missing image and a web font
/// from a CDN trips all three kinds of problem.
#[test]
fn the_page_check_catches_console_errors_and_resource_loads() {
    let tmp = tempfile::tempdir().unwrap();
    let page = tmp.path().join("broken.html");
    std::fs::write(
        &page,
        "<!DOCTYPE html><html><head><title>broken</title>\n\
         <style>@font-face { font-family: f; src: url(https://cdn.example.invalid/f.woff2); } body { font-family: f; }</style>\n\
         </head><body><p>text</p>\n\
         <script>console.error(\"broken-page-error\")</script>\n\
         <img src=\"missing.png\">\n\
         </body></html>\n",
    )
    .unwrap();
    let load = load_in_chromium(&page);
    let problems = page_problems(&load.stderr, &load.url);
    let found = |what: &str| problems.iter().any(|p| p.contains(what));
    assert!(
        found("broken-page-error") && found("missing.png") && found("cdn.example.invalid"),
        "missed a problem; found {problems:#?}\n--- stderr\n{}",
        load.stderr
    );
}

/// `history report`: real drills, a backup and its proof recorded in a history, with copies
/// of the drills dated one and two months back (a stand-in for the months a monthly drill
/// takes), on one page that Chromium shows cleanly, every run linked to its own report.
#[test]
fn issue_22_the_history_report_is_one_clean_page_with_every_run_linked() {
    use vecdrill::history::{History, RunFilter, RunKind};

    let tmp = tempfile::tempdir().unwrap();
    let history = tmp.path().join("history.sqlite");
    let env = [("VECDRILL_HISTORY", history.display().to_string())];
    let data = seeded_data_dir(tmp.path(), &[("docs", 400, 16)]);
    let path = scenario(tmp.path(), &data, free_port());
    run_scenario(&path, &tmp.path().join("reports"), &[], &env).expect_code(1);
    let repo = crate::common::repo_url(&tmp.path().join("repo"));
    let backup = crate::common::vecdrill_env(
        [
            "backup",
            "--repo",
            &repo,
            "--chroma-dir",
            data.to_str().unwrap(),
        ],
        &env,
    );
    backup.expect_code(0);
    let server = format!(
        "{} run --path {{dir}} --port {{port}}",
        chroma_bin().display()
    );
    let reports = tmp.path().join("reports");
    crate::common::vecdrill_env(
        [
            "prove",
            "--repo",
            &repo,
            "latest",
            "--server-cmd",
            &server,
            "--report-dir",
            reports.to_str().unwrap(),
        ],
        &env,
    )
    .expect_code(0);
    {
        let mut kept = History::open(&history).unwrap();
        let drills = kept
            .runs(&RunFilter {
                scenario: Some("report-files".into()),
                kind: Some(RunKind::Drill),
                since: None,
            })
            .unwrap();
        assert_eq!(drills.len(), 1);
        for months in [1, 2] {
            let mut earlier = drills[0].clone();
            earlier.id = format!("{}-{months}mo-earlier", earlier.id);
            earlier.started_at -= chrono::Duration::days(31 * months);
            earlier.finished_at -= chrono::Duration::days(31 * months);
            kept.record(&earlier).unwrap();
        }
    }

    let page = tmp.path().join("record/drills.html");
    std::fs::create_dir_all(page.parent().unwrap()).unwrap();
    let made = crate::common::vecdrill([
        "history",
        "report",
        "--history",
        history.to_str().unwrap(),
        "--since",
        "12mo",
        "--out",
        page.to_str().unwrap(),
    ]);
    made.expect_code(0);
    assert!(
        made.stdout().contains("(4 drills, 1 backups)"),
        "{}",
        made.stdout()
    );
    let load = load_in_chromium(&page);
    let problems = page_problems(&load.stderr, &load.url);
    assert!(
        problems.is_empty(),
        "the page is not clean:\n{}",
        problems.join("\n")
    );
    let dom = &load.dom;
    for section in ["Scenario: report-files", "Scenario: prove"] {
        assert!(dom.contains(section), "no {section}");
    }
    // Three months of the drill, each failing its 1us p99 objective; the objective drawn.
    let latency = svg(dom, "latency-1");
    assert_eq!(
        latency.matches("class=\"point fail\"").count(),
        9,
        "{latency}"
    );
    assert!(latency.contains("objective search_p99 ≤ "), "{latency}");
    let rto = svg(dom, "rto-1");
    assert!(rto.contains("objective rto ≤ 2m"), "{rto}");
    let months = &dom[dom.find("id=\"months-1\"").unwrap()..];
    let months = &months[..months.find("</table>").unwrap()];
    assert_eq!(
        months.matches("<td class=\"num r-missed\">0</td>").count(),
        3,
        "{months}"
    );
    // The backup is fresh and proven.
    let backups = &dom[dom.find("id=\"backups\"").unwrap()..];
    assert!(
        backups.contains("<td class=\"r-met\">yes</td>"),
        "{backups}"
    );
    // Every run links to its own report.html, which is there.
    let links: Vec<&str> = dom
        .split("<a href=\"")
        .skip(1)
        .map(|s| &s[..s.find('"').unwrap()])
        .collect();
    assert_eq!(links.len(), 4, "{dom}");
    for link in links {
        assert!(page.parent().unwrap().join(link).is_file(), "{link}");
    }

    // One scenario: the other is left out, the proof still says the backup is proven; --json
    // says what was written.
    let summary = crate::common::vecdrill([
        "history",
        "report",
        "--history",
        history.to_str().unwrap(),
        "--scenario",
        "report-files",
        "--out",
        page.to_str().unwrap(),
        "--json",
    ]);
    summary.expect_code(0);
    let only = std::fs::read_to_string(&page).unwrap();
    assert!(only.contains("Scenario: report-files") && !only.contains("Scenario: prove"));
    assert!(only.contains("<td class=\"r-met\">yes</td>"));
    let summary = summary.json();
    assert_eq!(summary["drills"], 3, "{summary}");
    assert_eq!(summary["scenarios"], serde_json::json!(["report-files"]));
}
