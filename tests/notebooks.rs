//! The notebooks in `notebooks-rs/` stay compilable: each one's code cells are extracted into a
//! program, `examples/notebook_NN.rs`, which CI compiles with the other examples. This test fails
//! when a notebook changed and its program was not regenerated; regenerate with
//! `EEGADAPT_BLESS=1 cargo test --test integration notebooks::`.

use std::path::{Path, PathBuf};

fn notebooks() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("notebooks-rs");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("notebooks-rs")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "ipynb"))
        .collect();
    out.sort();
    out
}

/// The program of a notebook: its code cells in order inside `main`, evcxr commands (`:dep`)
/// left out, a `@@cell N` line printed before each cell's output (so that recorded outputs can be
/// put back into their cells), run from `notebooks-rs/` as the notebook is.
fn program(notebook: &Path) -> String {
    let text = std::fs::read_to_string(notebook).expect("read notebook");
    let json: serde_json::Value = serde_json::from_str(&text).expect("notebook JSON");
    let name = notebook.file_name().expect("name").to_string_lossy();
    let mut body = String::new();
    for (i, cell) in json["cells"].as_array().expect("cells").iter().enumerate() {
        if cell["cell_type"] != "code" {
            continue;
        }
        let source: String = match &cell["source"] {
            serde_json::Value::Array(lines) => lines.iter().filter_map(|l| l.as_str()).collect(),
            other => other.as_str().unwrap_or_default().to_string(),
        };
        let code: Vec<&str> = source
            .lines()
            .filter(|l| !l.trim_start().starts_with(':'))
            .collect();
        if code.iter().all(|l| l.trim().is_empty()) {
            continue;
        }
        body.push_str(&format!("    println!(\"@@cell {i}\");\n"));
        for line in code {
            body.push_str(&format!("    {line}\n").replace("    \n", "\n"));
        }
    }
    format!(
        "//! Generated from `notebooks-rs/{name}` by `tests/notebooks.rs`; do not edit (change the\n\
         //! notebook, then `EEGADAPT_BLESS=1 cargo test --test integration notebooks::`).\n\
         #![allow(clippy::all, unused)]\n\n\
         #[rustfmt::skip]\n\
         fn main() -> Result<(), Box<dyn std::error::Error>> {{\n\
         \x20   std::env::set_current_dir(concat!(env!(\"CARGO_MANIFEST_DIR\"), \"/notebooks-rs\"))?;\n\
         {body}\
         \x20   Ok(())\n\
         }}\n"
    )
}

fn twin(notebook: &Path) -> PathBuf {
    let name = notebook.file_name().expect("name").to_string_lossy();
    let number: String = name.chars().take_while(char::is_ascii_digit).collect();
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(format!("notebook_{number}.rs"))
}

#[test]
fn every_notebook_has_a_current_compiled_twin() {
    let notebooks = notebooks();
    assert!(notebooks.len() >= 3, "{notebooks:?}");
    let bless = std::env::var_os("EEGADAPT_BLESS").is_some();
    for notebook in &notebooks {
        let expected = program(notebook);
        let path = twin(notebook);
        if bless {
            std::fs::write(&path, &expected).expect("write twin");
            continue;
        }
        let actual = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            actual == expected,
            "{} is not the code of {}: run EEGADAPT_BLESS=1 cargo test --test integration notebooks::",
            path.display(),
            notebook.display()
        );
    }
}

#[test]
fn every_notebook_has_saved_outputs() {
    for notebook in notebooks() {
        let json: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&notebook).expect("read")).expect("json");
        let code: Vec<&serde_json::Value> = json["cells"]
            .as_array()
            .expect("cells")
            .iter()
            .filter(|c| c["cell_type"] == "code")
            .collect();
        let with_output = code
            .iter()
            .filter(|c| c["outputs"].as_array().is_some_and(|o| !o.is_empty()))
            .count();
        // Every code cell but the `:dep` one prints something.
        assert!(
            with_output + 1 >= code.len(),
            "{}: {with_output} of {} code cells have outputs",
            notebook.display(),
            code.len()
        );
    }
}
