//! `openk sync` (with `--verify` and `--watch`), the sync that follows a
//! write on a logged-in vault, and the user config that can turn it off.

use std::io::IsTerminal as _;
use std::time::Duration;

use clap::Args;
use serde_json::json;

use super::output::{print, print_json};
use super::{CliError, CliResult, Global, errors, unlock};
use crate::engine::sync::{Progress, SyncOptions, SyncReport, VaultReport};
use crate::engine::usage::UsageReport;
use crate::engine::{Error, Session};

#[derive(Debug, Args)]
pub struct SyncArgs {
    /// Also download the whole server state and check it item by item
    /// against the vault manifest and this device (exit 1 on a mismatch)
    #[arg(long)]
    pub verify: bool,
    /// Stay connected and sync whenever another device changes a vault
    /// (server-sent events; reconnects with back-off). Ctrl-C stops.
    #[arg(long, conflicts_with = "verify")]
    pub watch: bool,
}

/// After a local write: syncs when the vault is logged in, auto sync is on
/// and `--no-sync` was not given. The write is already committed, so a
/// failed sync only becomes a note (the change stays pending), and the sync
/// gives up after [`limits::AFTER_WRITE`] so a slow or silent server never
/// holds the command.
pub async fn after_write(g: &Global, vault: &mut Session) -> Option<String> {
    sync_note(vault.after_write(sync_wanted(g)).await?)
}

/// Whether the user wants the syncs that follow writes and unlocks: no
/// `--no-sync`, `auto_sync` not turned off.
fn sync_wanted(g: &Global) -> bool {
    !g.no_sync && g.config.auto_sync
}

/// The note for a sync that followed a write: none when it worked.
fn sync_note(synced: Result<SyncReport, Error>) -> Option<String> {
    match synced {
        Ok(_) => None,
        Err(e @ (Error::Unreachable(_) | Error::NotAnswering(_))) => Some(format!(
            "saved here; not synced: {}; the change stays pending and `openk sync` sends it when the server is back",
            errors::message(&e)
        )),
        Err(e) => Some(format!(
            "saved here; not synced: {}; the change stays pending for `openk sync`",
            errors::message(&e)
        )),
    }
}

/// Syncs unless `--no-sync`, `auto_sync = false` or not logged in, giving
/// up after `time_limit` if one is given; a failure is a note.
pub async fn sync_unless_off(
    g: &Global,
    vault: &mut Session,
    time_limit: Option<Duration>,
) -> Option<String> {
    if !vault.syncs_after_write(sync_wanted(g)) {
        return None;
    }
    let opts = SyncOptions {
        time_limit,
        ..SyncOptions::default()
    };
    sync_note(vault.sync(&opts).await)
}

/// After an unlock that adopted a master password changed on another
/// device: says so, and syncs right away (unless `--no-sync` / auto sync is
/// off) so the changes this device kept while it had the old password reach
/// the server.
pub async fn after_password_adopted(g: &Global, vault: &mut Session) {
    if !vault.adopted_password_change() {
        return;
    }
    eprintln!(
        "openk: the master password was changed on another device; this device now uses the new one"
    );
    let Some(synced) = vault.after_write(sync_wanted(g)).await else {
        return;
    };
    match synced {
        Ok(report) => {
            let pushed: u64 = report.vaults.iter().map(|v| v.pushed).sum();
            if pushed > 0 {
                eprintln!("openk: synced the {pushed} change(s) this device kept");
            }
        }
        Err(e) => eprintln!(
            "openk: the changes made here are kept but not synced yet ({}); `openk sync` sends them",
            errors::message(&e)
        ),
    }
}

/// Prints an after-write note on stderr.
pub fn note_sync(note: Option<&str>) {
    if let Some(n) = note {
        eprintln!("openk: {n}");
    }
}

fn bar() -> Option<indicatif::ProgressBar> {
    std::io::stderr().is_terminal().then(new_bar)
}

/// The sync progress bar, hidden until the first progress report gives it
/// a length (never a "0/0"); [`show_bar`] draws it from then on.
fn new_bar() -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::hidden();
    bar.set_style(
        indicatif::ProgressStyle::with_template("{msg:10} [{bar:30}] {pos}/{len} ({rate})")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar())
            .with_key(
                "rate",
                |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = w.write_str(&rate_text(state.per_sec()));
                },
            )
            .progress_chars("=> "),
    );
    bar
}

/// Items per second as a whole number: `50620/s`.
fn rate_text(per_sec: f64) -> String {
    if per_sec.is_finite() && per_sec > 0.0 {
        format!("{:.0}/s", per_sec.round())
    } else {
        "0/s".to_owned()
    }
}

/// Sets the length and position, then starts drawing on stderr.
fn show_bar(b: &indicatif::ProgressBar, message: &'static str, done: u64, len: u64) {
    b.set_message(message);
    b.set_length(len.max(done));
    b.set_position(done);
    if b.is_hidden() && len > 0 {
        b.set_draw_target(indicatif::ProgressDrawTarget::stderr());
    }
}

fn vault_line(v: &VaultReport) -> String {
    let mut line = format!(
        "Synced {:?}: pulled {}, pushed {}",
        v.name, v.pulled, v.pushed
    );
    if !v.merged.is_empty() {
        line.push_str(&format!(", merged {}", v.merged.len()));
    }
    if !v.conflicts.is_empty() {
        line.push_str(&format!(
            " ({} conflict(s): `openk ls --conflicts`)",
            v.conflicts.len()
        ));
    }
    line.push_str(&format!("; at revision {}\n", v.head));
    if let Some(epoch) = v.new_key_epoch {
        line.push_str(&format!(
            "Took the rotated key of {:?} (key epoch {epoch}): a member was removed or left\n",
            v.name
        ));
    }
    if v.rotated {
        line.push_str(&format!(
            "Rotated the key of {:?}: a member had left, and opens nothing written from now on\n",
            v.name
        ));
    }
    for why in &v.refused {
        line.push_str(&format!(
            "REFUSED in {:?}: {}\n",
            v.name,
            crate::text::line(why)
        ));
    }
    if let Some(r) = &v.verify {
        if r.matches {
            line.push_str(&format!(
                "Verified {:?}: the server's {} item(s) match its manifest (number {}) and this device\n",
                v.name, r.server_items, r.manifest_counter
            ));
        } else {
            line.push_str(&format!(
                "MISMATCH in {:?}: the server's records {} its manifest (number {})\n",
                v.name,
                if r.server_matches_manifest {
                    "match"
                } else {
                    "do NOT match"
                },
                r.manifest_counter
            ));
            for (what, ids) in [
                ("missing on the server", &r.missing_on_server),
                ("different on the server", &r.differing),
                ("on the server but unknown here", &r.unknown_here),
            ] {
                for id in ids {
                    line.push_str(&format!("  item {id}: {what}\n"));
                }
            }
            if r.repushed > 0 {
                line.push_str(&format!(
                    "  pushed {} item(s) to the server again\n",
                    r.repushed
                ));
            }
        }
    }
    line
}

/// What the usage counters' exchange has to say: nothing when it went well.
fn usage_lines(u: &UsageReport) -> String {
    let mut text = String::new();
    for why in &u.refused {
        text.push_str(&format!("REFUSED usage: {}\n", crate::text::line(why)));
    }
    if let Some(p) = &u.problem {
        text.push_str(&format!(
            "Usage counters not synced ({}); the next sync tries again\n",
            crate::text::line(p)
        ));
    }
    text
}

fn mismatch(report: &SyncReport) -> bool {
    report
        .vaults
        .iter()
        .any(|v| v.verify.as_ref().is_some_and(|r| !r.matches))
}

async fn sync_once(g: &Global, vault: &mut Session, verify: bool) -> Result<SyncReport, Error> {
    let bar = if g.json { None } else { bar() };
    let progress = |p: Progress| {
        if let Some(b) = &bar {
            match p {
                Progress::Pulling { done, head } => {
                    show_bar(b, "pulling", done, u64::try_from(head).unwrap_or(0));
                }
                Progress::Pushing { done, total } => show_bar(b, "pushing", done, total),
            }
        }
    };
    let opts = SyncOptions {
        verify,
        progress: Some(&progress),
        ..SyncOptions::default()
    };
    let out = vault.sync(&opts).await;
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    out
}

pub async fn sync(g: &Global, a: &SyncArgs) -> CliResult {
    let mut vault = unlock(g).await?;
    if vault.remote().is_none() {
        vault.close().await;
        return Err(CliError::usage(
            "this vault is local only; `openk register --server URL --email EMAIL` connects it to a server",
        ));
    }
    if a.watch {
        let out = watch(g, &mut vault).await;
        vault.close().await;
        return out;
    }
    let out = sync_once(g, &mut vault, a.verify).await;
    vault.close().await;
    let report = out?;
    if g.json {
        print_json(&json!({
            "vaults": report.vaults, "left": report.left, "warnings": report.warnings,
            "usage": report.usage,
        }))?;
    } else {
        let mut text: String = report.vaults.iter().map(vault_line).collect();
        for left in &report.left {
            text.push_str(&super::shared_vaults::left_text(left));
        }
        for w in &report.warnings {
            text.push_str(&format!("warning: {}\n", crate::text::line(w)));
        }
        text.push_str(&usage_lines(&report.usage));
        print(&text)?;
    }
    if mismatch(&report) {
        return Err(CliError::general(
            "the server's state does not match what this device and the vault manifest say (see above)",
        ));
    }
    Ok(())
}

/// `openk sync --watch`: sync, then on every event from another device.
async fn watch(g: &Global, vault: &mut Session) -> CliResult {
    let say = |text: String| {
        if g.json {
            println!("{text}");
        } else {
            eprintln!("openk: {text}");
        }
    };
    // Only what went wrong with the usage counters is worth a line.
    let say_usage = |u: &UsageReport| {
        if u.refused.is_empty() && u.problem.is_none() {
            return;
        }
        if g.json {
            say(json!({ "event": "usage", "usage": u }).to_string());
        } else {
            for line in usage_lines(u).lines() {
                say(line.to_owned());
            }
        }
    };
    let mut backoff = Duration::from_secs(1);
    let mut synced_once = false;
    loop {
        if !synced_once {
            match sync_once(g, vault, false).await {
                Ok(r) => {
                    synced_once = true;
                    for v in &r.vaults {
                        say(if g.json {
                            json!({ "event": "synced", "vault": v }).to_string()
                        } else {
                            vault_line(v).trim_end().to_owned()
                        });
                    }
                    say_usage(&r.usage);
                }
                Err(e @ (Error::Unreachable(_) | Error::NotAnswering(_))) => {
                    say(errors::message(&e))
                }
                Err(e) => return Err(e.into()),
            }
        }
        let stream = if synced_once {
            vault.events().await
        } else {
            Err(Error::Unreachable(String::new()))
        };
        match stream {
            Ok(mut events) => {
                backoff = Duration::from_secs(1);
                say(if g.json {
                    json!({ "event": "connected" }).to_string()
                } else {
                    "watching for changes (Ctrl-C stops)".to_owned()
                });
                loop {
                    let next = tokio::select! {
                        e = events.next() => e,
                        _ = tokio::signal::ctrl_c() => return Ok(()),
                    };
                    match next {
                        Some(Ok(ev)) if vault.event_needs_sync(&ev).await => {
                            match sync_once(g, vault, false).await {
                                Ok(r) => {
                                    for v in
                                        r.vaults.iter().filter(|v| v.pulled > 0 || v.pushed > 0)
                                    {
                                        say(if g.json {
                                            json!({ "event": "synced", "vault": v }).to_string()
                                        } else {
                                            vault_line(v).trim_end().to_owned()
                                        });
                                    }
                                    say_usage(&r.usage);
                                }
                                Err(
                                    e @ (Error::Unreachable(_)
                                    | Error::NotAnswering(_)
                                    | Error::HeadMoved
                                    | Error::KeptMoving(_)),
                                ) => {
                                    say(errors::message(&e));
                                }
                                Err(e) => return Err(e.into()),
                            }
                        }
                        Some(Ok(_)) => {}
                        Some(Err(e)) => {
                            say(format!("event stream interrupted: {e}"));
                            break;
                        }
                        None => {
                            say("the server closed the event stream".to_owned());
                            break;
                        }
                    }
                }
                // Catch up on anything missed while disconnected.
                synced_once = false;
            }
            Err(e) if e.is_session_over() => return Err(e.into()),
            Err(e) => {
                if !matches!(&e, Error::Unreachable(m) if m.is_empty()) {
                    say(errors::message(&e));
                }
            }
        }
        say(format!("reconnecting in {} s", backoff.as_secs()));
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            _ = tokio::signal::ctrl_c() => return Ok(()),
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_progress_bar_waits_for_its_length_and_shows_whole_rates() {
        let b = new_bar();
        assert!(b.is_hidden(), "nothing is drawn before the length is known");
        assert_eq!(b.length(), None);
        assert_eq!(rate_text(50_620.246_8), "50620/s");
        assert_eq!(rate_text(0.4), "0/s");
        assert_eq!(rate_text(f64::NAN), "0/s");
        show_bar(&b, "pulling", 0, 0);
        assert!(b.is_hidden(), "a zero length is still not drawn");
    }
}
