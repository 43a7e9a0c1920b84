//! Which Chroma release a server command runs, when it can be told without running it: a
//! `chroma` installed with pip in a virtual environment carries its package's metadata
//! (`lib/python*/site-packages/chromadb-X.Y.Z.dist-info`) beside it. The `chroma --version`
//! of 1.x prints its command-line tool's own version, not the package's.

use std::path::{Path, PathBuf};

/// The release of the `chroma` that `command` starts (its first word: a path, or a name found
/// on PATH), when pip's metadata says; none otherwise (another program first, a container, a
/// build from source).
pub fn release_of_command(command: &str) -> Option<String> {
    let program = shlex::split(command)?.into_iter().next()?;
    let program = locate(Path::new(&program))?;
    if program.file_name()? != "chroma" {
        return None;
    }
    let venv = program.parent()?.parent()?;
    let lib = venv.join("lib");
    for python in std::fs::read_dir(&lib).ok()?.flatten() {
        let site = python.path().join("site-packages");
        let Ok(entries) = std::fs::read_dir(&site) else {
            continue;
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if let Some(version) = name
                .strip_prefix("chromadb-")
                .and_then(|rest| rest.strip_suffix(".dist-info"))
            {
                return Some(version.to_string());
            }
        }
    }
    None
}

/// `program` as a path to a file: as given when it has a directory, else found on PATH.
fn locate(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return program.is_file().then(|| program.to_path_buf());
    }
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|path| path.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_release_comes_from_the_packages_metadata_beside_the_program() {
        let venv = tempfile::tempdir().unwrap();
        let bin = venv.path().join("bin");
        let site = venv.path().join("lib/python3.11/site-packages");
        std::fs::create_dir_all(&bin).unwrap();
        std::fs::create_dir_all(site.join("chromadb-0.5.23.dist-info")).unwrap();
        std::fs::create_dir_all(site.join("numpy-2.0.0.dist-info")).unwrap();
        std::fs::write(bin.join("chroma"), "#!/bin/sh\n").unwrap();
        let command = format!(
            "{} run --path {{dir}} --port {{port}}",
            bin.join("chroma").display()
        );
        assert_eq!(release_of_command(&command).as_deref(), Some("0.5.23"));
        // Another program first, or a chroma with no metadata beside it: not known.
        assert_eq!(release_of_command(&format!("env A=1 {command}")), None);
        std::fs::remove_dir_all(site.join("chromadb-0.5.23.dist-info")).unwrap();
        assert_eq!(release_of_command(&command), None);
    }
}
