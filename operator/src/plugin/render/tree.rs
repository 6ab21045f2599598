//! The tree of `get`: revisions → Deployments → Pods, with columns aligned across the tree.

use super::{Style, age, percent};
use crate::plugin::view::{RevisionView, Role, View};
use std::fmt::Write as _;

/// Column widths of the tree.
struct Columns {
    name: usize,
    kind: usize,
    status: usize,
    age: usize,
}

/// One row of the tree; `status` is painted by the caller, `status_len` is its visible length.
struct Row<'a> {
    name: &'a str,
    kind: &'a str,
    status: String,
    status_len: usize,
    age: &'a str,
    info: &'a str,
}

/// Appends the tree of `view`'s revisions to `out`.
pub fn render(out: &mut String, view: &View, style: Style) {
    if view.revisions.is_empty() {
        out.push_str("No revisions yet.\n");
        return;
    }
    let names = view.revisions.iter().flat_map(|r| {
        let pods = r.pods.iter().map(|p| p.name.chars().count() + 6);
        let deployment = r.deployment.as_ref().map(|d| d.name.chars().count() + 3);
        pods.chain(deployment)
    });
    let statuses = view
        .revisions
        .iter()
        .flat_map(|r| r.pods.iter().map(|p| p.status.chars().count()));
    let columns = Columns {
        name: names.max().unwrap_or(0).max("REVISIONS".len()),
        kind: "Deployment".len(),
        status: statuses.max().unwrap_or(0).max("ready 10/10".len()),
        age: 4,
    };
    let header = Row {
        name: "REVISIONS",
        kind: "KIND",
        status: "STATUS".into(),
        status_len: "STATUS".len(),
        age: "AGE",
        info: "INFO",
    };
    write_row(out, &columns, &header);
    for rev in &view.revisions {
        revision(out, rev, &columns, style);
    }
}

fn write_row(out: &mut String, c: &Columns, row: &Row<'_>) {
    let pad = |text: &str, width: usize| " ".repeat(width.saturating_sub(text.chars().count()));
    let line = format!(
        "{}{}  {}{}  {}{}  {}{}  {}",
        row.name,
        pad(row.name, c.name),
        row.kind,
        pad(row.kind, c.kind),
        row.status,
        " ".repeat(c.status.saturating_sub(row.status_len)),
        row.age,
        pad(row.age, c.age),
        row.info,
    );
    // Trailing spaces of empty columns are not kept.
    out.push_str(line.trim_end());
    out.push('\n');
}

fn revision(out: &mut String, rev: &RevisionView, c: &Columns, style: Style) {
    let (code, role) = match rev.role {
        Role::Canary => ("33", "canary"),
        Role::Stable => ("32", "stable"),
        Role::Retired => ("2", "retired"),
    };
    let mut info = rev
        .traffic_percent
        .map_or("not in the split".to_string(), |p| {
            format!("traffic {}", percent(p))
        });
    for image in &rev.images {
        let _ = write!(info, ", {image}");
    }
    let title = format!("revision {}", rev.revision);
    write_row(
        out,
        c,
        &Row {
            name: &title,
            kind: "Revision",
            status: style.paint(code, role),
            status_len: role.len(),
            age: "",
            info: &info,
        },
    );
    let Some(d) = &rev.deployment else {
        let row = Row {
            name: "└─ (no Deployment)",
            kind: "",
            status: String::new(),
            status_len: 0,
            age: "",
            info: "",
        };
        write_row(out, c, &row);
        return;
    };
    let ready = format!("ready {}/{}", d.ready, d.desired);
    let code = if d.available >= d.desired { "32" } else { "33" };
    let name = format!("└─ {}", d.name);
    let info = format!("{} available", d.available);
    write_row(
        out,
        c,
        &Row {
            name: &name,
            kind: "Deployment",
            status: style.paint(code, &ready),
            status_len: ready.chars().count(),
            age: "",
            info: &info,
        },
    );
    let n = rev.pods.len();
    for (i, pod) in rev.pods.iter().enumerate() {
        let branch = if i + 1 == n { "└─" } else { "├─" };
        let name = format!("   {branch} {}", pod.name);
        let code = match pod.status.as_str() {
            "Running" => "32",
            "Pending" | "ContainerCreating" | "Terminating" => "33",
            _ => "31",
        };
        let mut info = format!("ready {}", pod.ready);
        if pod.restarts > 0 {
            let _ = write!(info, ", {} restarts", pod.restarts);
        }
        if let Some(ip) = &pod.ip {
            let _ = write!(info, ", {ip}");
        }
        let pod_age = age(pod.age_seconds);
        write_row(
            out,
            c,
            &Row {
                name: &name,
                kind: "Pod",
                status: style.paint(code, &pod.status),
                status_len: pod.status.chars().count(),
                age: &pod_age,
                info: &info,
            },
        );
    }
}
