//! What each steering command writes, decided from the Rollout alone (pure).
//!
//! Every command is idempotent: when the Rollout already is where the command would put
//! it, the decision is [`Decision::Already`] and nothing is written. The status requests
//! follow the controller's protocol (`docs/planner.md`): `status.promoteStep` names the
//! step it releases, `status.promoteFull` skips the rest, `status.abort` rolls back, and
//! retry removes `abort` from an Aborted rollout.

use crate::plan::template_hash;
use k8s_openapi::api::core::v1::PodTemplateSpec;
use serde_json::{Value, json};
use weir_crds::Rollout;
use weir_crds::rollout::Phase;

/// A steering request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request {
    /// Move past the current step, or (`full`) skip every remaining step.
    Promote {
        /// Skip every remaining step.
        full: bool,
    },
    /// Put all traffic back on stable.
    Abort,
    /// Start an aborted canary again.
    Retry,
    /// Set `spec.paused`.
    Pause,
    /// Clear `spec.paused`.
    Resume,
}

/// Which part of the Rollout a write goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The status subresource (merge patch).
    Status,
    /// The object itself (merge patch).
    Spec,
    /// The object itself (JSON patch).
    SpecJsonPatch,
}

/// A write to make, and what to tell the user once it is made.
#[derive(Debug, Clone, PartialEq)]
pub struct Write {
    /// Where the patch goes.
    pub target: Target,
    /// The patch.
    pub patch: Value,
    /// What happened, in words.
    pub message: String,
}

/// The outcome of deciding a command.
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Write this.
    Write(Write),
    /// Nothing to write: the Rollout already is (or was already asked to be) where the command leads.
    Already(String),
}

/// A command that cannot be carried out, in words a person can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// Promote with no canary waiting.
    #[error("nothing to promote: {0}")]
    NothingToPromote(String),
    /// Abort with no canary in progress.
    #[error("nothing to abort: {0}")]
    NothingToAbort(String),
    /// Retry of a rollout that is not aborted.
    #[error("nothing to retry: {0}")]
    NothingToRetry(String),
    /// Promote of an aborted rollout.
    #[error(
        "rollout {name} is Aborted: `kubectl weir retry {name}` starts the canary again, then promote"
    )]
    PromoteAborted {
        /// The Rollout.
        name: String,
    },
    /// `set image` naming a container the template does not have.
    #[error("rollout {name} has no container {container:?} (its containers: {known})")]
    UnknownContainer {
        /// The Rollout.
        name: String,
        /// The container asked for.
        container: String,
        /// The containers it has.
        known: String,
    },
    /// `undo` to a revision whose template is not kept.
    #[error("revision {revision} of rollout {name} is not kept (kept: {kept})")]
    UnknownRevision {
        /// The Rollout.
        name: String,
        /// The revision asked for.
        revision: i64,
        /// The revisions kept.
        kept: String,
    },
    /// `undo` with nothing before the current revision.
    #[error("nothing to undo: {0}")]
    NothingToUndo(String),
    /// `set image` on a Rollout that adopts a Deployment and has no template of its own.
    #[error(
        "rollout {name} adopts Deployment {deployment} (spec.workloadRef) and has no template; replace workloadRef with a template to start the next revision"
    )]
    NoTemplate {
        /// The Rollout.
        name: String,
        /// The adopted Deployment.
        deployment: String,
    },
    /// A kept template that cannot be written back.
    #[error("revision {revision}'s template cannot be serialised: {message}")]
    Template {
        /// The revision.
        revision: i64,
        /// The serde error, in words.
        message: String,
    },
}

/// One kept revision's template (from its ControllerRevision).
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryEntry {
    /// The revision number.
    pub revision: i64,
    /// Its pod template.
    pub template: PodTemplateSpec,
}

/// Decides what `request` writes to `rollout`.
pub fn decide(rollout: &Rollout, request: Request) -> Result<Decision, CommandError> {
    let name = rollout.metadata.name.clone().unwrap_or_default();
    let status = rollout.status.clone().unwrap_or_default();
    let in_canary = status.canary_revision.is_some();
    let aborted = status.phase == Some(Phase::Aborted);
    let write = |target, patch, message: String| {
        Ok(Decision::Write(Write {
            target,
            patch,
            message,
        }))
    };
    match request {
        Request::Promote { full } => {
            if !in_canary {
                return Err(CommandError::NothingToPromote(state(rollout)));
            }
            if aborted || status.abort {
                return Err(CommandError::PromoteAborted { name });
            }
            if full {
                if status.promote_full {
                    return Ok(Decision::Already(format!(
                        "full promotion of rollout {name} already requested"
                    )));
                }
                return write(
                    Target::Status,
                    json!({"status": {"promoteFull": true}}),
                    format!(
                        "rollout {name}: full promotion requested, the canary goes to 100% and is finalised"
                    ),
                );
            }
            let step = status.current_step.unwrap_or(0);
            if status.promote_step == Some(step) {
                return Ok(Decision::Already(format!(
                    "promotion past step {} of rollout {name} already requested",
                    step + 1
                )));
            }
            let mut message = format!("rollout {name}: promotion past step {} requested", step + 1);
            if rollout.spec.paused {
                message
                    .push_str(" (it takes effect on `kubectl weir resume`, the rollout is paused)");
            }
            write(
                Target::Status,
                json!({"status": {"promoteStep": step}}),
                message,
            )
        }
        Request::Abort => {
            if aborted && status.abort {
                return Ok(Decision::Already(format!(
                    "rollout {name} is already aborted"
                )));
            }
            if status.abort {
                return Ok(Decision::Already(format!(
                    "abort of rollout {name} already requested"
                )));
            }
            if !in_canary {
                return Err(CommandError::NothingToAbort(state(rollout)));
            }
            write(
                Target::Status,
                json!({"status": {"abort": true}}),
                format!("rollout {name}: abort requested, all traffic goes back to stable"),
            )
        }
        Request::Retry => {
            if aborted && status.abort {
                // Removing the key (not writing false) leaves the status as the controller writes it.
                return write(
                    Target::Status,
                    json!({"status": {"abort": null}}),
                    format!("rollout {name}: retry requested, the canary starts again from step 1"),
                );
            }
            if aborted {
                return Ok(Decision::Already(format!(
                    "retry of rollout {name} already requested"
                )));
            }
            Err(CommandError::NothingToRetry(state(rollout)))
        }
        Request::Pause => {
            if rollout.spec.paused {
                return Ok(Decision::Already(format!(
                    "rollout {name} is already paused"
                )));
            }
            write(
                Target::Spec,
                json!({"spec": {"paused": true}}),
                format!("rollout {name} paused"),
            )
        }
        Request::Resume => {
            if !rollout.spec.paused {
                let mut message = format!("rollout {name} is not paused by `kubectl weir pause`");
                if status.phase == Some(Phase::Paused) {
                    message.push_str(&format!(
                        "; it waits for `kubectl weir promote {name}`: {}",
                        status.message.unwrap_or_default()
                    ));
                }
                return Ok(Decision::Already(message));
            }
            write(
                Target::Spec,
                json!({"spec": {"paused": false}}),
                format!("rollout {name} resumed"),
            )
        }
    }
}

/// Where a rollout stands, for error messages: `rollout foobar is Healthy at revision 3`.
pub fn state(rollout: &Rollout) -> String {
    let name = rollout.metadata.name.clone().unwrap_or_default();
    let status = rollout.status.clone().unwrap_or_default();
    let phase = status
        .phase
        .map_or("not yet reconciled".to_string(), |p| format!("{p:?}"));
    match (status.canary_revision, status.stable_revision) {
        (Some(c), _) => format!(
            "rollout {name} is {phase} with canary revision {c} at step {}",
            status.step_progress.unwrap_or_else(|| "?".into())
        ),
        (None, Some(s)) => format!("rollout {name} is {phase} at revision {s}"),
        (None, None) => format!("rollout {name} is {phase}"),
    }
}

/// `set image`: the JSON patch that sets each `container=image` (`*` for every container),
/// guarded by `test` operations so a concurrent change of the container list fails instead of
/// hitting the wrong container.
pub fn set_image(rollout: &Rollout, images: &[(String, String)]) -> Result<Decision, CommandError> {
    let name = rollout.metadata.name.clone().unwrap_or_default();
    let Some(template) = rollout.spec.template.as_ref() else {
        return Err(CommandError::NoTemplate {
            deployment: rollout
                .spec
                .workload_ref
                .as_ref()
                .map(|w| w.name.clone())
                .unwrap_or_default(),
            name,
        });
    };
    let spec = template.spec.clone().unwrap_or_default();
    let lists = [
        ("containers", spec.containers.clone()),
        (
            "initContainers",
            spec.init_containers.clone().unwrap_or_default(),
        ),
    ];
    let mut ops = Vec::new();
    let mut changed = Vec::new();
    for (container, image) in images {
        let mut matched = false;
        for (list, containers) in &lists {
            for (i, c) in containers.iter().enumerate() {
                if container != "*" && &c.name != container {
                    continue;
                }
                if *list == "initContainers" && container == "*" {
                    continue;
                }
                matched = true;
                if c.image.as_deref() == Some(image.as_str()) {
                    continue;
                }
                let path = format!("/spec/template/spec/{list}/{i}");
                ops.push(json!({"op": "test", "path": format!("{path}/name"), "value": c.name}));
                ops.push(json!({"op": "add", "path": format!("{path}/image"), "value": image}));
                changed.push(format!("{}={image}", c.name));
            }
        }
        if !matched {
            let known = lists
                .iter()
                .flat_map(|(_, cs)| cs.iter().map(|c| c.name.clone()))
                .collect::<Vec<_>>()
                .join(", ");
            return Err(CommandError::UnknownContainer {
                name,
                container: container.clone(),
                known,
            });
        }
    }
    if ops.is_empty() {
        return Ok(Decision::Already(format!(
            "rollout {name} already runs those images"
        )));
    }
    Ok(Decision::Write(Write {
        target: Target::SpecJsonPatch,
        patch: Value::Array(ops),
        message: format!(
            "rollout {name}: image updated ({}); a new revision starts",
            changed.join(", ")
        ),
    }))
}

/// `undo`: the template of revision `to` (default: stable while a canary runs, else the newest
/// kept revision before stable) written over `spec.template`.
pub fn undo(
    rollout: &Rollout,
    history: &[HistoryEntry],
    to: Option<i64>,
) -> Result<Decision, CommandError> {
    let name = rollout.metadata.name.clone().unwrap_or_default();
    let status = rollout.status.clone().unwrap_or_default();
    let mut kept: Vec<i64> = history.iter().map(|h| h.revision).collect();
    kept.sort_unstable();
    let kept_text = || {
        if kept.is_empty() {
            "none".to_string()
        } else {
            kept.iter()
                .map(i64::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    let target = match to {
        Some(r) => r,
        None => match (status.canary_revision, status.stable_revision) {
            (Some(_), Some(stable)) => stable,
            (None, Some(stable)) => match kept.iter().rev().find(|r| **r < stable) {
                Some(r) => *r,
                None => {
                    return Err(CommandError::NothingToUndo(format!(
                        "{}, and no earlier revision is kept (kept: {})",
                        state(rollout),
                        kept_text()
                    )));
                }
            },
            _ => return Err(CommandError::NothingToUndo(state(rollout))),
        },
    };
    let Some(entry) = history.iter().find(|h| h.revision == target) else {
        return Err(CommandError::UnknownRevision {
            name,
            revision: target,
            kept: kept_text(),
        });
    };
    if Some(template_hash(&entry.template)) == rollout.spec.template.as_ref().map(template_hash) {
        return Ok(Decision::Already(format!(
            "rollout {name}'s template already is revision {target}'s"
        )));
    }
    let template = serde_json::to_value(&entry.template).map_err(|e| CommandError::Template {
        revision: target,
        message: e.to_string(),
    })?;
    let what = if status.canary_revision.is_some() && Some(target) == status.stable_revision {
        "the canary is abandoned and stable keeps all traffic".to_string()
    } else {
        "the controller delivers it as a new revision".to_string()
    };
    Ok(Decision::Write(Write {
        target: Target::SpecJsonPatch,
        patch: json!([{"op": "replace", "path": "/spec/template", "value": template}]),
        message: format!("rollout {name}: template set back to revision {target}'s; {what}"),
    }))
}

#[cfg(test)]
mod tests;
