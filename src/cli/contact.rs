//! `openk contact`: other accounts' keys, pinned on this device and shown as
//! fingerprints to compare in person.

use clap::Subcommand;
use serde_json::json;

use super::output::{print, print_json, table};
use super::{CliResult, Global, unlock};
use crate::engine::contacts::{Contact, Trust};
use crate::text;

#[derive(Debug, Subcommand)]
pub enum ContactCommand {
    /// Another account's fingerprint (pinned on this device the first time)
    Show {
        /// The account's email
        email: String,
    },
    /// Confirm an account's keys with the fingerprint its owner read to you
    Verify {
        /// The account's email
        email: String,
        /// The fingerprint as its owner's `openk status` shows it
        #[arg(long, value_name = "FP")]
        fingerprint: String,
    },
    /// The contacts pinned on this device
    Ls,
}

pub async fn contact(g: &Global, cmd: &ContactCommand) -> CliResult {
    let mut vault = unlock(g).await?;
    let result = match cmd {
        ContactCommand::Show { email } => vault.contact(email).await.map(|c| shown(g, &c)),
        ContactCommand::Verify { email, fingerprint } => vault
            .verify_contact(email, fingerprint)
            .await
            .map(|c| shown(g, &c)),
        ContactCommand::Ls => vault.contacts().await.map(|cs| listed(g, &cs)),
    };
    vault.close().await;
    result?
}

fn as_json(c: &Contact) -> serde_json::Value {
    let mut v = json!({
        "email": c.email,
        "account_id": c.account_id,
        "key_version": c.key_version,
        "fingerprint": c.fingerprint,
        "trust": c.trust.label(),
    });
    if let Trust::Changed { pinned } = &c.trust {
        v["pinned_fingerprint"] = json!(pinned);
    }
    v
}

fn shown(g: &Global, c: &Contact) -> CliResult {
    if g.json {
        return print_json(&as_json(c));
    }
    let email = text::line(&c.email);
    let mut out = format!("{email}\n  fingerprint  {}\n", c.fingerprint);
    out.push_str(&match &c.trust {
        Trust::Me => "  this is your own account\n".to_owned(),
        Trust::New => format!(
            "  pinned on this device now. Compare the fingerprint with {email} (in person or on \
             a call: their `openk status` shows it), then `openk contact verify {email} \
             --fingerprint '…'`\n"
        ),
        Trust::Pinned => "  pinned on this device (not yet verified in person)\n".to_owned(),
        Trust::Verified => "  verified\n".to_owned(),
        Trust::Changed { pinned } => format!(
            "  WARNING: these are not the keys this device pinned ({pinned}). Someone may be \
             substituting keys. Nothing is shared with {email} until you compare the new \
             fingerprint with them and run `openk contact verify {email} --fingerprint '…'`\n"
        ),
    });
    print(&out)
}

fn listed(g: &Global, cs: &[Contact]) -> CliResult {
    if g.json {
        return print_json(&json!(cs.iter().map(as_json).collect::<Vec<_>>()));
    }
    if cs.is_empty() {
        return print("No contacts pinned yet; `openk contact show EMAIL` pins one.\n");
    }
    let rows: Vec<Vec<String>> = cs
        .iter()
        .map(|c| {
            vec![
                text::cell(&c.email).into_owned(),
                c.fingerprint.clone(),
                c.trust.label().to_owned(),
            ]
        })
        .collect();
    print(&table(&["EMAIL", "FINGERPRINT", "TRUST"], &rows))
}
