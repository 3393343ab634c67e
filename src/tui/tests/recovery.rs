//! The account recovery popup (palette `recovery`) against the in-process
//! server: the status, a new code shown once after the master password, a
//! check of the code, and a split into shares; a wrong password or a wrong
//! code says so and changes nothing.

use crossterm::event::KeyCode;

use super::{Harness, PASSWORD, Server, code, key, register};
use crate::tui::app::Popup;
use crate::tui::popups::recovery::{Shown, Step};

fn popup(h: &Harness) -> &crate::tui::popups::RecoveryState {
    match h.app.popups.last() {
        Some(Popup::Recovery(p)) => p,
        other => panic!("not the recovery popup: {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_is_set_up_checked_and_split_from_the_palette() {
    let server = Server::start().await;
    let mut h = Harness::new(true).await;
    register(&h, &server.url).await;
    h.keys(PASSWORD).await;
    h.press(code(KeyCode::Enter)).await;
    h.press(key(':')).await;
    h.keys("recovery").await;
    h.press(code(KeyCode::Enter)).await;
    assert!(
        matches!(popup(&h).status, Some(Ok(None))),
        "{:?}",
        popup(&h).status
    );
    insta::assert_snapshot!("recovery_not_set_up", h.screen(100, 30, &[]));

    // A wrong password sets nothing up.
    h.press(key('s')).await;
    h.keys("not the password").await;
    h.press(code(KeyCode::Enter)).await;
    assert!(
        popup(&h)
            .error
            .as_deref()
            .is_some_and(|e| e.contains("wrong password"))
    );
    assert!(popup(&h).shown.is_none());
    h.press(code(KeyCode::Esc)).await;

    h.press(key('s')).await;
    h.keys(PASSWORD).await;
    h.press(code(KeyCode::Enter)).await;
    let Some(Shown::Code(code_text)) = &popup(&h).shown else {
        panic!("no code shown: {:?}", popup(&h).error);
    };
    let code_text = code_text.to_string();
    assert!(code_text.starts_with("OKR-"));
    let screen = h.screen(100, 30, &[]);
    assert!(
        screen.contains(&code_text) && screen.contains("shown once"),
        "{screen}"
    );
    assert!(matches!(popup(&h).status, Some(Ok(Some(_)))));

    // Checked: a wrong code is refused, the right one is good.
    h.press(key('v')).await;
    h.keys("OKR-AAAAAA-AAAAAA-AAAAAA-AAAAAA-AAAAAA-AH").await;
    h.press(code(KeyCode::Enter)).await;
    assert!(popup(&h).error.is_some(), "a wrong code is refused");
    assert_eq!(popup(&h).step, Step::Verify);
    h.press(code(KeyCode::Esc)).await;
    h.press(key('v')).await;
    h.keys(&code_text).await;
    h.press(code(KeyCode::Enter)).await;
    assert!(
        popup(&h)
            .notice
            .as_deref()
            .is_some_and(|n| n.contains("good")),
        "{:?}",
        popup(&h).error
    );
    // The code typed in is masked.
    assert!(!h.screen(100, 30, &[]).contains(&code_text));

    // Split into 5 shares, any 3 of which check out.
    h.press(key('x')).await;
    h.keys(&code_text).await;
    h.press(code(KeyCode::Tab)).await;
    h.keys("5").await;
    h.press(code(KeyCode::Tab)).await;
    h.keys("3").await;
    h.press(code(KeyCode::Enter)).await;
    let Some(Shown::Shares { threshold, shares }) = &popup(&h).shown else {
        panic!("no shares shown: {:?}", popup(&h).error);
    };
    assert_eq!((*threshold, shares.len()), (3, 5));
    let three = format!(
        "{} {} {}",
        shares[4].as_str(),
        shares[0].as_str(),
        shares[2].as_str()
    );
    h.press(key('v')).await;
    h.keys(&three).await;
    h.press(code(KeyCode::Enter)).await;
    assert!(
        popup(&h)
            .notice
            .as_deref()
            .is_some_and(|n| n.contains("good"))
    );
    // Esc hides what is shown, then closes.
    h.press(code(KeyCode::Esc)).await;
    assert!(popup(&h).shown.is_none());
    h.press(code(KeyCode::Esc)).await;
    assert!(h.app.popups.is_empty());
}

/// Emergency access from the same popup: the contact's fingerprint is
/// shown before anything is sealed; `n` grants nothing, `y` grants to
/// exactly those keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emergency_access_is_granted_after_the_fingerprint_is_shown() {
    use crate::engine::{KdfParams, SecretString, Session};
    let server = Server::start().await;
    let mut h = Harness::new(true).await;
    register(&h, &server.url).await;
    let ana_dir = h.dir.parent().expect("parent").join("ana");
    let mut ana = Session::init(
        &ana_dir,
        SecretString::from(PASSWORD.to_owned()),
        KdfParams::FLOOR,
    )
    .await
    .expect("init");
    ana.register(&server.url, "ana@example.org", "ana-laptop")
        .await
        .expect("register");
    let ana_fp = ana
        .contact("ana@example.org")
        .await
        .expect("own identity")
        .fingerprint;
    ana.close().await;

    h.keys(PASSWORD).await;
    h.press(code(KeyCode::Enter)).await;
    h.press(key(':')).await;
    h.keys("recovery").await;
    h.press(code(KeyCode::Enter)).await;
    h.press(key('g')).await;
    assert_eq!(popup(&h).step, Step::Grant);
    h.keys("ana@example.org").await;
    for _ in 0..3 {
        h.press(code(KeyCode::Enter)).await;
    }
    assert!(popup(&h).contact.is_some(), "{:?}", popup(&h).error);
    let screen = h.screen(100, 30, &[]);
    assert!(screen.contains(&ana_fp), "{screen}");
    // n: back to the fields, nothing granted.
    h.press(key('n')).await;
    assert!(popup(&h).contact.is_none());
    for _ in 0..1 {
        h.press(code(KeyCode::Enter)).await;
    }
    assert!(popup(&h).contact.is_some(), "{:?}", popup(&h).error);
    h.press(key('y')).await;
    assert!(
        popup(&h)
            .notice
            .as_deref()
            .is_some_and(|n| n.contains("Granted")),
        "{:?}",
        popup(&h).error
    );
    let mut v = Session::unlock(&h.dir, SecretString::from(PASSWORD.to_owned()), None)
        .await
        .expect("unlock");
    let grants = v.emergency_grants().await.expect("grants");
    assert_eq!(grants.given.len(), 1);
    assert_eq!(grants.given[0].contact_email, "ana@example.org");
    v.close().await;
}
