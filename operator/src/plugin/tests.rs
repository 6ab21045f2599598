//! Fixture tests of what the plugin prints: `get` at every phase, `status` lines, `list`,
//! and a piped watch. The expected pages live in `operator/tests/fixtures/plugin/`; after a
//! deliberate change of the output, `WEIR_BLESS=1` rewrites them (review the diff).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::fixtures::{self, now};
use super::list::{self, ListRow};
use super::render::{self, Style, weight_bar};
use super::view::{Inputs, View};
use super::watch::{CLEAR, ListScreen, Screen};
use std::path::PathBuf;

fn golden(name: &str, actual: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/plugin")
        .join(name);
    if std::env::var_os("WEIR_BLESS").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (WEIR_BLESS=1 writes it)", path.display()));
    assert_eq!(
        actual,
        expected,
        "the output differs from {}:\n{actual}",
        path.display()
    );
}

fn page(inputs: &Inputs) -> String {
    render::get(&View::build(inputs, now()), Style::PLAIN)
}

#[test]
fn get_mid_step_shows_step_weights_images_tree_analysis_and_live_figures() {
    let text = page(&fixtures::mid_step());
    for expected in [
        "Step:         2/5  analysis (1 check)",
        "Weight:       set 10%, TrafficSplit holds 10%",
        "stable 90% [==================##] canary 10%",
        "app=weir-demo:v2 (canary)",
        "app=weir-demo:v1 (stable)",
        "Last check:   Halt: p99 latency 620ms > 500ms (Fail, 10s ago)",
        "canary v2     240       99.6%     12ms     620ms",
    ] {
        assert!(text.contains(expected), "no {expected:?} in\n{text}");
    }
    golden("get-mid-step.txt", &text);
}

#[test]
fn get_paused_shows_the_wait_the_pending_promote_and_why_there_are_no_live_metrics() {
    let mut inputs = fixtures::paused();
    inputs.rollout.status.as_mut().unwrap().promote_step = Some(3);
    let text = page(&inputs);
    assert!(text.contains("Phase:        Paused"), "{text}");
    assert!(
        text.contains("Pending:      promotion past step 4 requested"),
        "{text}"
    );
    assert!(
        text.contains("Live:         no live metrics (the metrics API answered 503"),
        "{text}"
    );
    golden("get-paused.txt", &text);
}

#[test]
fn get_aborted_after_failed_analysis_shows_the_rollback_and_terminating_canary_pods() {
    let text = page(&fixtures::aborted_after_failed_analysis());
    assert!(text.contains("Phase:        Aborted"), "{text}");
    assert!(
        text.contains("Step:         2/5  analysis (1 check)"),
        "{text}"
    );
    assert!(
        text.contains("Analysis:     0 passed at this step, 3 failed (limit 2)"),
        "{text}"
    );
    assert!(text.contains("Terminating"), "{text}");
    assert!(
        !text.contains("Pending:"),
        "an abort the controller carried out is not pending"
    );
    golden("get-aborted.txt", &text);
}

#[test]
fn get_first_revision_shows_pods_coming_up_and_no_step() {
    let text = page(&fixtures::first_revision());
    assert!(!text.contains("Step:"), "{text}");
    assert!(text.contains("ContainerCreating"), "{text}");
    assert!(text.contains("revision 1"), "{text}");
    golden("get-first-revision.txt", &text);
}

#[test]
fn colour_only_when_asked_and_the_plain_text_is_the_same() {
    let view = View::build(&fixtures::mid_step(), now());
    let plain = render::get(&view, Style::PLAIN);
    let coloured = render::get(&view, Style { color: true });
    assert!(!plain.contains('\x1b'));
    assert!(coloured.contains("\x1b[36mProgressing\x1b[0m"));
    let stripped = strip_ansi(&coloured).replace('█', "");
    assert_eq!(
        stripped.lines().count(),
        plain.lines().count(),
        "same lines with and without colour"
    );
}

fn strip_ansi(text: &str) -> String {
    let mut out = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c == 'm' {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

#[test]
fn weight_bar_shows_any_canary_traffic_and_keeps_stable_until_it_has_none() {
    assert_eq!(
        weight_bar(0.0, Style::PLAIN),
        "stable 100% [====================] canary 0%"
    );
    assert_eq!(
        weight_bar(1.0, Style::PLAIN),
        "stable 99% [===================#] canary 1%"
    );
    assert_eq!(
        weight_bar(50.0, Style::PLAIN),
        "stable 50% [==========##########] canary 50%"
    );
    assert_eq!(
        weight_bar(99.0, Style::PLAIN),
        "stable 1% [=###################] canary 99%"
    );
    assert_eq!(
        weight_bar(100.0, Style::PLAIN),
        "stable 0% [####################] canary 100%"
    );
    assert_eq!(
        weight_bar(100.0 / 3.0, Style::PLAIN),
        "stable 66.7% [=============#######] canary 33.3%"
    );
}

#[test]
fn status_lines_say_phase_step_weight_and_message() {
    let line = |inputs: Inputs| render::status_line(&View::build(&inputs, now()), Style::PLAIN);
    assert_eq!(
        line(fixtures::paused()),
        "foobar: Paused at step 4/5 (pause (until promoted)), canary 50% — Waiting at step 4/5 for `kubectl weir promote`"
    );
    assert_eq!(
        line(fixtures::promoted()),
        "foobar: Healthy at step 5/5 (complete), revision 2 — Revision foobar-v2 takes all traffic"
    );
    let mut stale = fixtures::promoted();
    stale.rollout.metadata.generation = Some(3);
    assert!(line(stale).contains("waiting for the controller to see the latest spec"));
}

#[test]
fn a_piped_watch_prints_the_page_once_then_one_line_per_change() {
    let mut screen = Screen::new(false);
    let states = [
        fixtures::mid_step(),
        fixtures::mid_step(),
        fixtures::paused(),
        fixtures::promoted(),
    ];
    let mut output = String::new();
    for (i, inputs) in states.iter().enumerate() {
        let view = View::build(inputs, now());
        let page = render::get(&view, Style::PLAIN);
        let line = render::status_line(&view, Style::PLAIN);
        if let Some(text) = screen.frame(&page, &line, &format!("10:00:0{i}Z")) {
            output.push_str(&text);
        }
    }
    assert!(!output.contains(CLEAR), "no cursor movement into a pipe");
    assert!(
        !output.contains("10:00:01Z"),
        "an unchanged state prints nothing"
    );
    let tail: Vec<&str> = output.lines().rev().take(2).collect();
    assert_eq!(
        tail,
        [
            "10:00:03Z foobar: Healthy at step 5/5 (complete), revision 2 — Revision foobar-v2 takes all traffic",
            "10:00:02Z foobar: Paused at step 4/5 (pause (until promoted)), canary 50% — Waiting at step 4/5 for `kubectl weir promote`",
        ]
    );
    golden("watch-piped.txt", &output);
}

#[test]
fn a_terminal_watch_redraws_in_place_only_when_the_page_changes() {
    let mut screen = Screen::new(true);
    let view = View::build(&fixtures::mid_step(), now());
    let page = render::get(&view, Style::PLAIN);
    let first = screen.frame(&page, "line", "t").unwrap();
    assert!(first.starts_with(CLEAR) && first.ends_with(&page));
    assert_eq!(screen.frame(&page, "line", "t"), None);
    let paused = render::get(&View::build(&fixtures::paused(), now()), Style::PLAIN);
    assert!(
        screen
            .frame(&paused, "line", "t")
            .unwrap()
            .starts_with(CLEAR)
    );
}

#[test]
fn list_rows_and_piped_list_watch() {
    let rows = |all: &[Inputs]| -> Vec<ListRow> {
        all.iter()
            .map(|i| ListRow::build(&i.rollout, now()))
            .collect()
    };
    let mut other = fixtures::paused();
    other.rollout.metadata.name = Some("checkout".into());
    other.rollout.metadata.namespace = Some("shop".into());
    let table = list::render(
        &rows(&[fixtures::mid_step(), other.clone()]),
        true,
        Style::PLAIN,
    );
    assert_eq!(
        table,
        "NAMESPACE   NAME       PHASE         STEP   WEIGHT   STABLE   CANARY   AGE\n\
         default     foobar     Progressing   2/5    90/10    1        2        60m\n\
         shop        checkout   Paused        4/5    50/50    1        2        60m\n"
    );
    let mut screen = ListScreen::new(false);
    let first = screen
        .frame(&rows(&[fixtures::mid_step()]), false, Style::PLAIN)
        .unwrap();
    assert!(first.starts_with("NAME"));
    assert_eq!(
        screen.frame(&rows(&[fixtures::mid_step()]), false, Style::PLAIN),
        None
    );
    let next = screen
        .frame(&rows(&[fixtures::paused()]), false, Style::PLAIN)
        .unwrap();
    assert_eq!(
        next,
        "foobar   Paused   4/5    50/50    1        2        60m\n"
    );
    let gone = screen.frame(&[], false, Style::PLAIN).unwrap();
    assert_eq!(gone, "foobar   deleted\n");
}
