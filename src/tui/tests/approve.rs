//! Device approval in the devices pane (key `3`): a new device's request
//! appears with its name and platform; `a` takes it and shows the code to
//! compare, `y` approves (the new device gets the Secret Key and signs in),
//! `n` denies, and `d` on a request denies it outright.

use std::time::{Duration, Instant};

use crossterm::event::KeyCode;

use super::{Harness, PASSWORD, Server, code, key, register};
use crate::engine::SecretString;
use crate::engine::approval::{ApprovalEnd, Approved, NewDevice, Waiting, request_approval};
use crate::engine::error::Error;
use crate::engine::remote;
use crate::tui::app::Popup;
use crate::tui::popups::confirm::Confirmable;

const EMAIL: &str = "tui@example.org";

fn waiting() -> Waiting {
    Waiting {
        timeout: Duration::from_secs(30),
        poll: Duration::from_millis(50),
    }
}

/// The new device's side: its code, then the Secret Key (or why not).
fn new_device(
    mut n: NewDevice,
) -> tokio::task::JoinHandle<(NewDevice, Option<String>, crate::engine::Result<Approved>)> {
    tokio::spawn(async move {
        let started = Instant::now();
        match n.wait_for_code(waiting(), started).await {
            Ok(code) => {
                let approved = n.wait_for_secret(waiting(), started).await;
                (n, Some(code.to_string()), approved)
            }
            Err(e) => (n, None, Err(e)),
        }
    })
}

/// The screen with what changes from run to run made fixed: the code, the
/// platform and the last-seen times.
fn steady(text: &str, code: Option<&str>) -> String {
    let mut text = text.replace(&remote::platform(), "PLATFORM");
    if let Some(code) = code {
        text = text.replace(code, "123 456");
    }
    text.lines().map(fixed_times).collect::<Vec<_>>().join("\n")
}

/// `l` with every `YYYY-MM-DD hh:mm` and `YYYY-MM-DD` (the devices' times)
/// fixed.
fn fixed_times(l: &str) -> String {
    const SHAPES: [(&[u8], &str); 2] = [
        (b"dddd-dd-dd dd:dd", "YYYY-MM-DD hh:mm"),
        (b"dddd-dd-dd", "YYYY-MM-DD"),
    ];
    let chars: Vec<char> = l.chars().collect();
    let fits = |at: usize, shape: &[u8]| {
        at + shape.len() <= chars.len()
            && shape.iter().zip(&chars[at..]).all(|(s, c)| {
                if *s == b'd' {
                    c.is_ascii_digit()
                } else {
                    *c == char::from(*s)
                }
            })
    };
    let mut out = String::new();
    let mut i = 0;
    'scan: while i < chars.len() {
        for (shape, fixed) in SHAPES {
            if fits(i, shape) {
                out.push_str(fixed);
                i += shape.len();
                continue 'scan;
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

fn code_shown(h: &Harness) -> Option<String> {
    match h.app.popups.last() {
        Some(Popup::Confirm(Confirmable::ApproveDevice { code, .. })) => Some(code.clone()),
        _ => None,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_waiting_device_is_approved_with_its_code_or_denied() {
    let server = Server::start().await;
    let mut h = Harness::new(true).await;
    register(&h, &server.url).await;
    let phone = request_approval(&server.url, EMAIL, "phone")
        .await
        .expect("request");
    let phone_task = new_device(phone);
    h.keys(PASSWORD).await;
    h.press(code(KeyCode::Enter)).await;
    h.press(key('3')).await;
    h.wait_until("the request is listed", |app| {
        !app.devices().requests.is_empty()
    })
    .await;
    let text = h.screen(100, 30, &[]);
    assert!(
        text.contains("New device waiting: \"phone\"") && text.contains(&remote::platform()),
        "{text}"
    );
    insta::assert_snapshot!("devices_pane_request_waiting", steady(&text, None));

    // `a` takes it: the code to compare, with the name and platform.
    h.press(key('a')).await;
    h.wait_until("the code is shown", |app| {
        matches!(
            app.popups.last(),
            Some(Popup::Confirm(Confirmable::ApproveDevice { .. }))
        )
    })
    .await;
    let shown = code_shown(&h).expect("code");
    let text = h.screen(100, 30, &[]);
    assert!(text.contains(&shown), "{text}");
    insta::assert_snapshot!("devices_pane_approve_code", steady(&text, Some(&shown)));
    h.press(key('y')).await;
    h.wait_until("approved", |app| app.devices().requests.is_empty())
        .await;
    let (n, code_at_n, approved) = phone_task.await.expect("task");
    assert_eq!(code_at_n.as_deref(), Some(shown.as_str()), "the same code");
    let b = n
        .login(
            &h._tmp.path().join("phone"),
            &approved.expect("the Secret Key arrived"),
            SecretString::from(PASSWORD.to_owned()),
            true,
        )
        .await
        .expect("the approved device signs in");
    b.close().await;
    // The list says where the new device runs and who approved it.
    h.press(key('3')).await;
    h.wait_until("the new device is listed", |app| {
        app.devices()
            .list
            .as_ref()
            .and_then(|l| l.as_ref().ok())
            .is_some_and(|l| l.len() == 2)
    })
    .await;
    let text = h.screen(100, 30, &[]);
    assert!(text.contains("approved by laptop"), "{text}");
    insta::assert_snapshot!("devices_pane_approved_by", steady(&text, None));

    // `n` at the code denies: nothing reaches the new device.
    let tablet = request_approval(&server.url, EMAIL, "tablet")
        .await
        .expect("request");
    let tablet_task = new_device(tablet);
    h.press(key('3')).await;
    h.wait_until("the second request", |app| {
        !app.devices().requests.is_empty()
    })
    .await;
    h.app
        .pane_as_mut::<crate::tui::panes::devices::DevicesPane>()
        .expect("pane")
        .sel = 0;
    h.press(key('a')).await;
    h.wait_until("the code is shown", |app| {
        matches!(
            app.popups.last(),
            Some(Popup::Confirm(Confirmable::ApproveDevice { .. }))
        )
    })
    .await;
    h.press(key('n')).await;
    let (_, _, outcome) = tablet_task.await.expect("task");
    assert!(
        matches!(outcome, Err(Error::ApprovalEnded(ApprovalEnd::Denied))),
        "{:?}",
        outcome.err()
    );

    // `d` on a request denies it without taking it.
    let watch = request_approval(&server.url, EMAIL, "watch")
        .await
        .expect("request");
    let watch_task = new_device(watch);
    // `S` reads the list again (and syncs).
    h.press(key('S')).await;
    h.wait_until("the third request", |app| {
        !app.devices().requests.is_empty()
    })
    .await;
    h.app
        .pane_as_mut::<crate::tui::panes::devices::DevicesPane>()
        .expect("pane")
        .sel = 0;
    h.press(key('d')).await;
    assert!(h.screen(100, 30, &[]).contains("Deny \"watch\"?"));
    h.press(key('y')).await;
    let (_, _, outcome) = watch_task.await.expect("task");
    assert!(matches!(
        outcome,
        Err(Error::ApprovalEnded(ApprovalEnd::Denied))
    ));
}
