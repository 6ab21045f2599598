//! What a watch writes for each new state, decided purely: on a terminal the page is
//! redrawn in place; into a pipe, plain lines are appended, one per change.

use super::list::{self, ListRow};
use super::render::Style;
use std::collections::BTreeMap;

/// Moves the cursor home and clears the screen.
pub const CLEAR: &str = "\x1b[H\x1b[2J";

/// The output of `get -w` (and `status -w`, which has no page).
#[derive(Debug, Clone, Default)]
pub struct Screen {
    tty: bool,
    last_page: Option<String>,
    last_line: Option<String>,
}

// === impl Screen ===

impl Screen {
    /// A screen for a terminal (`tty`) or a pipe.
    pub fn new(tty: bool) -> Self {
        Self {
            tty,
            ..Self::default()
        }
    }

    /// What to write for the state shown by `page` and summed up by `line` at `clock`
    /// (`HH:MM:SS`), or None when nothing visible changed. On a terminal: the page, redrawn.
    /// Piped: the page the first time, then `clock line` whenever the line changes.
    pub fn frame(&mut self, page: &str, line: &str, clock: &str) -> Option<String> {
        if self.tty {
            if self.last_page.as_deref() == Some(page) {
                return None;
            }
            self.last_page = Some(page.to_string());
            return Some(format!("{CLEAR}{page}"));
        }
        if self.last_page.is_none() {
            self.last_page = Some(page.to_string());
            self.last_line = Some(line.to_string());
            return Some(format!("{page}\n"));
        }
        self.line(line, clock)
    }

    /// `clock line` when the line differs from the last one written, else None.
    pub fn line(&mut self, line: &str, clock: &str) -> Option<String> {
        if self.last_line.as_deref() == Some(line) {
            return None;
        }
        self.last_line = Some(line.to_string());
        Some(format!("{clock} {line}\n"))
    }
}

/// The output of `list -w`.
#[derive(Debug, Clone, Default)]
pub struct ListScreen {
    tty: bool,
    last_table: Option<String>,
    rows: BTreeMap<(String, String), String>,
}

// === impl ListScreen ===

impl ListScreen {
    /// A list screen for a terminal (`tty`) or a pipe.
    pub fn new(tty: bool) -> Self {
        Self {
            tty,
            ..Self::default()
        }
    }

    /// What to write for these rows, or None when nothing changed. On a terminal: the table,
    /// redrawn. Piped: the table the first time, then each row that changed (and
    /// `NAME deleted` for one that went), as `kubectl get -w` does.
    pub fn frame(
        &mut self,
        rows: &[ListRow],
        all_namespaces: bool,
        style: Style,
    ) -> Option<String> {
        if self.tty {
            let table = list::render(rows, all_namespaces, style);
            if self.last_table.as_deref() == Some(table.as_str()) {
                return None;
            }
            self.last_table = Some(table.clone());
            return Some(format!("{CLEAR}{table}"));
        }
        let widths = list::widths(rows, all_namespaces);
        let current: BTreeMap<(String, String), String> = rows
            .iter()
            .map(|r| {
                let key = (r.namespace.clone(), r.name.clone());
                (key, list::line(r, &widths, all_namespaces, Style::PLAIN))
            })
            .collect();
        let mut out = String::new();
        if self.last_table.is_none() {
            let table = list::render(rows, all_namespaces, Style::PLAIN);
            out.push_str(&table);
            self.last_table = Some(table);
        } else {
            for (key, line) in &current {
                if self.rows.get(key) != Some(line) {
                    out.push_str(line);
                    out.push('\n');
                }
            }
            for (ns, name) in self.rows.keys().filter(|k| !current.contains_key(*k)) {
                if all_namespaces {
                    out.push_str(&format!("{ns}   {name}   deleted\n"));
                } else {
                    out.push_str(&format!("{name}   deleted\n"));
                }
            }
        }
        self.rows = current;
        (!out.is_empty()).then_some(out)
    }
}
