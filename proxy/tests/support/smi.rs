//! SMI access objects as YAML, in the shape of each SMI version.
#![allow(dead_code)] // Test support: each test file uses a part.

/// One SMI release: the versions of TrafficTarget and of HTTPRouteGroup/TCPRoute it has.
#[derive(Debug, Clone, Copy)]
pub struct Smi {
    /// `access.smi-spec.io` version.
    pub access: &'static str,
    /// `specs.smi-spec.io` version.
    pub specs: &'static str,
}

/// Every SMI version: TrafficTarget stops at v1alpha3, whose spec v1alpha4 routes complete.
pub const VERSIONS: [Smi; 4] = [
    Smi {
        access: "v1alpha1",
        specs: "v1alpha1",
    },
    Smi {
        access: "v1alpha2",
        specs: "v1alpha2",
    },
    Smi {
        access: "v1alpha3",
        specs: "v1alpha3",
    },
    Smi {
        access: "v1alpha3",
        specs: "v1alpha4",
    },
];

/// One named HTTP match.
#[derive(Debug, Clone, Copy, Default)]
pub struct Match<'a> {
    /// Its name.
    pub name: &'a str,
    /// `pathRegex`, if any.
    pub path: Option<&'a str>,
    /// `methods`, if any.
    pub methods: Option<&'a [&'a str]>,
    /// Header regexes (v1alpha3 and later).
    pub headers: &'a [(&'a str, &'a str)],
}

/// One rule of a TrafficTarget.
#[derive(Debug, Clone, Copy)]
pub struct Rule<'a> {
    /// `HTTPRouteGroup` or `TCPRoute`.
    pub kind: &'a str,
    /// The route group's name.
    pub name: &'a str,
    /// The allowed matches (all when empty).
    pub matches: &'a [&'a str],
}

// === impl Smi ===

impl Smi {
    /// Whether HTTP matches may filter headers in this version.
    pub fn has_headers(&self) -> bool {
        matches!(self.specs, "v1alpha3" | "v1alpha4")
    }

    /// Whether TCPRoutes may name ports in this version.
    pub fn has_tcp_ports(&self) -> bool {
        self.specs == "v1alpha4"
    }

    /// An HTTPRouteGroup in namespace `ns`.
    pub fn route_group(&self, ns: &str, name: &str, matches: &[Match<'_>]) -> String {
        let mut items = String::new();
        for m in matches {
            items.push_str(&format!("  - name: {}\n", m.name));
            if let Some(p) = m.path {
                items.push_str(&format!("    pathRegex: {}\n", quote(p)));
            }
            if let Some(methods) = m.methods {
                let list: Vec<String> = methods.iter().map(|x| quote(x)).collect();
                items.push_str(&format!("    methods: [{}]\n", list.join(", ")));
            }
            if !m.headers.is_empty() {
                assert!(self.has_headers(), "{} has no header matches", self.specs);
                if self.specs == "v1alpha3" {
                    items.push_str("    headers:\n");
                    for (k, v) in m.headers {
                        items.push_str(&format!("    - {k}: {}\n", quote(v)));
                    }
                } else {
                    items.push_str("    headers:\n");
                    for (k, v) in m.headers {
                        items.push_str(&format!("      {k}: {}\n", quote(v)));
                    }
                }
            }
        }
        let head = format!(
            "---\napiVersion: specs.smi-spec.io/{}\nkind: HTTPRouteGroup\nmetadata: {{name: {name}, namespace: {ns}}}\n",
            self.specs
        );
        if self.specs == "v1alpha1" {
            // v1alpha1 has `matches` at the top level.
            format!("{head}matches:\n{}", dedent(&items))
        } else {
            format!("{head}spec:\n  matches:\n{items}")
        }
    }

    /// A TCPRoute in namespace `ns`; `ports` only in v1alpha4 (earlier: every port).
    pub fn tcp_route(&self, ns: &str, name: &str, ports: Option<&[u16]>) -> String {
        let spec = match ports {
            Some(ports) => {
                assert!(
                    self.has_tcp_ports(),
                    "{} TCPRoutes have no ports",
                    self.specs
                );
                let list: Vec<String> = ports.iter().map(u16::to_string).collect();
                format!("spec:\n  matches:\n    ports: [{}]\n", list.join(", "))
            }
            None => "spec: {}\n".to_string(),
        };
        format!(
            "---\napiVersion: specs.smi-spec.io/{}\nkind: TCPRoute\nmetadata: {{name: {name}, namespace: {ns}}}\n{spec}",
            self.specs
        )
    }

    /// A TrafficTarget in namespace `ns` from `sources` to `dest` (ServiceAccounts of `ns`).
    pub fn target(
        &self,
        ns: &str,
        name: &str,
        dest: &str,
        rules: &[Rule<'_>],
        sources: &[&str],
    ) -> String {
        let mut rule_items = String::new();
        for r in rules {
            rule_items.push_str(&format!("  - kind: {}\n    name: {}\n", r.kind, r.name));
            if !r.matches.is_empty() {
                rule_items.push_str(&format!("    matches: [{}]\n", r.matches.join(", ")));
            }
        }
        let mut source_items = String::new();
        for s in sources {
            source_items.push_str(&format!(
                "  - kind: ServiceAccount\n    name: {s}\n    namespace: {ns}\n"
            ));
        }
        let rules_key = if self.access == "v1alpha1" {
            "specs"
        } else {
            "rules"
        };
        let body = format!(
            "  destination:\n    kind: ServiceAccount\n    name: {dest}\n    namespace: {ns}\n  {rules_key}:{}\n{rule_items}  sources:\n{source_items}",
            if rules.is_empty() { " []" } else { "" }
        );
        let head = format!(
            "---\napiVersion: access.smi-spec.io/{}\nkind: TrafficTarget\nmetadata: {{name: {name}, namespace: {ns}}}\n",
            self.access
        );
        if self.access == "v1alpha1" {
            // v1alpha1 has destination, specs and sources at the top level.
            format!("{head}{}", dedent(&body))
        } else {
            format!("{head}spec:\n{body}")
        }
    }
}

fn quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// Removes two spaces of indentation from every line.
fn dedent(text: &str) -> String {
    text.lines()
        .map(|l| l.strip_prefix("  ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n")
        + "\n"
}
