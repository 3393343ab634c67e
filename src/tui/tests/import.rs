//! The import popup (palette `import FILE`): a Chrome CSV imported with
//! its report shown, the items in the vault list; an unknown format and a
//! file that is not there keep what was typed and say what to fix.

use crossterm::event::KeyCode;

use super::{Harness, code, key};
use crate::tui::app::Popup;
use crate::tui::popups::ImportState;

fn popup(h: &Harness) -> &ImportState {
    match h.app.popups.last() {
        Some(Popup::Import(p)) => p,
        other => panic!("not the import popup: {other:?}"),
    }
}

#[tokio::test]
async fn a_csv_is_imported_from_the_palette_with_its_report() {
    let mut h = Harness::unlocked().await;
    let csv = h.dir.parent().expect("parent").join("Chrome Passwords.csv");
    std::fs::write(
        &csv,
        "name,url,username,password,note\n\
         imported.example,https://imported.example/login,ana,imported-pw-1,\n\
         other.example,https://other.example/,ben,imported-pw-2,a note\n",
    )
    .expect("write");
    h.press(key(':')).await;
    h.keys(&format!("import {}", csv.display())).await;
    h.press(code(KeyCode::Enter)).await;
    // The palette's argument filled the file; Enter on the form imports.
    assert_eq!(popup(&h).fields[0].as_str(), csv.display().to_string());
    h.press(code(KeyCode::Enter)).await;
    let report = popup(&h).report.as_ref().expect("a report");
    assert_eq!(report.imported.len(), 2, "{:?}", popup(&h).error);
    let screen = h.screen(100, 30, &[]);
    assert!(
        screen.contains("Imported 2 item(s) (chrome-csv)"),
        "{screen}"
    );
    h.press(code(KeyCode::Esc)).await;
    assert!(h.app.popups.is_empty());
    let screen = h.screen(100, 30, &[]);
    assert!(screen.contains("imported.example"), "{screen}");

    // The same file again adds nothing.
    h.press(key(':')).await;
    h.keys(&format!("import {}", csv.display())).await;
    h.press(code(KeyCode::Enter)).await;
    h.press(code(KeyCode::Enter)).await;
    let report = popup(&h).report.as_ref().expect("a report");
    assert!(report.imported.is_empty());
    assert_eq!(report.duplicates.len(), 2);
}

#[tokio::test]
async fn a_bad_format_or_a_missing_file_keeps_the_form() {
    let mut h = Harness::unlocked().await;
    h.press(key(':')).await;
    h.keys("import").await;
    h.press(code(KeyCode::Enter)).await;
    assert_eq!(popup(&h).on, 0);
    h.keys("/nonexistent/file.csv").await;
    h.press(code(KeyCode::Tab)).await;
    // "auto" → "autox": not a format.
    h.press(code(KeyCode::End)).await;
    h.keys("x").await;
    h.press(code(KeyCode::Enter)).await;
    assert_eq!(popup(&h).on, 1);
    assert!(
        popup(&h)
            .error
            .as_deref()
            .is_some_and(|e| e.contains("unknown format"))
    );
    for _ in 0..5 {
        h.press(code(KeyCode::Backspace)).await;
    }
    h.keys("chrome-csv").await;
    h.press(code(KeyCode::Enter)).await;
    let p = popup(&h);
    assert_eq!(p.on, 0, "{:?}", p.error);
    assert!(
        p.error
            .as_deref()
            .is_some_and(|e| e.contains("cannot read it"))
    );
    assert_eq!(p.fields[0].as_str(), "/nonexistent/file.csv");
    insta::assert_snapshot!("import_missing_file", h.screen(100, 24, &[]));
}

#[tokio::test]
async fn the_vault_is_exported_from_the_palette_and_plaintext_asks_first() {
    use std::os::unix::fs::PermissionsExt as _;
    let mut h = Harness::unlocked().await;
    let archive = h.dir.parent().expect("parent").join("vault.openk");
    h.press(key(':')).await;
    h.keys(&format!("export {}", archive.display())).await;
    h.press(code(KeyCode::Enter)).await;
    let Some(Popup::Export(p)) = h.app.popups.last() else {
        panic!("not the export popup");
    };
    assert_eq!(p.on, 2, "the cursor waits on the passphrase");
    // Two passphrases that differ: nothing is written.
    h.keys("correct horse battery staple export").await;
    h.press(code(KeyCode::Tab)).await;
    h.keys("something else").await;
    h.press(code(KeyCode::Enter)).await;
    let Some(Popup::Export(p)) = h.app.popups.last() else {
        panic!("not the export popup");
    };
    assert!(p.error.as_deref().is_some_and(|e| e.contains("differ")));
    assert!(!archive.exists());
    for _ in 0.."something else".len() {
        h.press(code(KeyCode::Backspace)).await;
    }
    h.keys("correct horse battery staple export").await;
    h.press(code(KeyCode::Enter)).await;
    let Some(Popup::Export(p)) = h.app.popups.last() else {
        panic!("not the export popup");
    };
    let (written, _, _) = p.written.as_ref().expect("written");
    assert_eq!(written.items, 5, "{:?}", p.error);
    let mode = std::fs::metadata(&archive)
        .expect("archive")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let screen = h.screen(100, 24, &[]);
    assert!(screen.contains("Exported 5 item(s)"), "{screen}");
    h.press(code(KeyCode::Esc)).await;

    // JSON: nothing is written until y.
    let json = h.dir.parent().expect("parent").join("vault.json");
    h.press(key(':')).await;
    h.keys(&format!("export {}", json.display())).await;
    h.press(code(KeyCode::Enter)).await;
    h.press(code(KeyCode::Up)).await;
    for _ in 0.."openk".len() {
        h.press(code(KeyCode::Backspace)).await;
    }
    h.keys("json").await;
    h.press(code(KeyCode::Enter)).await;
    let screen = h.screen(100, 24, &[]);
    assert!(screen.contains("IN THE CLEAR"), "{screen}");
    assert!(!json.exists());
    h.press(key('y')).await;
    assert!(json.exists());
}
