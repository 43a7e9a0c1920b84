//! Passwords typed on a terminal. The terminal is read with echo off, one byte at a time and
//! with its signal keys off, so that Ctrl-C ends the prompt here (echo restored, exit 130)
//! instead of killing vecdrill with the terminal left mute.

use std::io::{self, IsTerminal, Read, Write};

use nix::sys::termios::{self, LocalFlags, SetArg, SpecialCharacterIndices, Termios};
use vecdrill::repo::password::Prompt;
use zeroize::Zeroizing;

/// The prompt, when someone is at a terminal to answer it.
pub fn for_terminal() -> Option<Prompt<'static>> {
    on_terminal().then_some(&ask)
}

/// [`for_terminal`], remembering each answer for the rest of the process: `vecdrill menu`
/// asks a repository's password once, and the commands it runs are answered from memory.
pub fn remembering() -> Option<Prompt<'static>> {
    on_terminal().then_some(&ask_and_remember)
}

/// Answers typed at [`remembering`] prompts, by question (which names the repository).
static REMEMBERED: std::sync::Mutex<Vec<(String, Zeroizing<String>)>> =
    std::sync::Mutex::new(Vec::new());

fn ask_and_remember(question: &str) -> io::Result<String> {
    let answer = ask(question)?;
    if let Ok(mut remembered) = REMEMBERED.lock() {
        remembered.push((question.to_string(), Zeroizing::new(answer.clone())));
    }
    Ok(answer)
}

fn recall(question: &str) -> Option<String> {
    let remembered = REMEMBERED.lock().ok()?;
    remembered
        .iter()
        .find(|(asked, _)| asked == question)
        .map(|(_, answer)| answer.to_string())
}

fn on_terminal() -> bool {
    io::stdin().is_terminal() && std::fs::File::open("/dev/tty").is_ok()
}

/// Ask `question` on the terminal and read a password without showing it.
pub fn ask(question: &str) -> io::Result<String> {
    if let Some(known) = recall(question) {
        return Ok(known);
    }
    let tty = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open("/dev/tty")?;
    let saved = termios::tcgetattr(&tty)?;
    let mut quiet = saved.clone();
    quiet
        .local_flags
        .remove(LocalFlags::ECHO | LocalFlags::ICANON | LocalFlags::ISIG);
    quiet.control_chars[SpecialCharacterIndices::VMIN as usize] = 1;
    quiet.control_chars[SpecialCharacterIndices::VTIME as usize] = 0;
    // Quiet before the question shows: what is typed once it shows is neither echoed nor
    // flushed away.
    let typed = {
        let _restore = Restore::set(&tty, saved, &quiet)?;
        (&tty).write_all(question.as_bytes())?;
        read_password(&mut &tty)
    };
    (&tty).write_all(b"\n")?;
    typed.map(|line| line.to_string())
}

/// The terminal's settings, put back when dropped (also when reading failed).
struct Restore<'a> {
    tty: &'a std::fs::File,
    saved: Termios,
}

impl<'a> Restore<'a> {
    fn set(tty: &'a std::fs::File, saved: Termios, quiet: &Termios) -> io::Result<Self> {
        termios::tcsetattr(tty, SetArg::TCSAFLUSH, quiet)?;
        Ok(Self { tty, saved })
    }
}

impl Drop for Restore<'_> {
    fn drop(&mut self) {
        let _ = termios::tcsetattr(self.tty, SetArg::TCSANOW, &self.saved);
    }
}

const CTRL_C: u8 = 0x03;
const CTRL_D: u8 = 0x04;
const CTRL_U: u8 = 0x15;
const BACKSPACE: u8 = 0x08;
const DELETE: u8 = 0x7f;

/// One line typed with the terminal's line editing off: Enter ends it, Backspace removes the
/// last character, Ctrl-U the whole line, Ctrl-C cancels, Ctrl-D on an empty line ends input;
/// other control keys are ignored.
fn read_password(input: &mut impl Read) -> io::Result<Zeroizing<String>> {
    let mut line = Zeroizing::new(Vec::new());
    let mut byte = [0u8; 1];
    loop {
        if input.read(&mut byte)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the terminal closed before a password was typed",
            ));
        }
        match byte[0] {
            b'\r' | b'\n' => break,
            CTRL_C => return Err(io::Error::new(io::ErrorKind::Interrupted, "interrupted")),
            CTRL_D if line.is_empty() => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "no password was typed",
                ))
            }
            BACKSPACE | DELETE => {
                // A whole character: continuation bytes, then the byte that began it.
                while let Some(removed) = line.pop() {
                    if removed & 0xC0 != 0x80 {
                        break;
                    }
                }
            }
            CTRL_U => line.clear(),
            control if control < 0x20 => {}
            other => line.push(other),
        }
    }
    let text = std::str::from_utf8(&line)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "the password is not UTF-8"))?;
    Ok(Zeroizing::new(text.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn typed(keys: &[u8]) -> io::Result<String> {
        read_password(&mut &keys[..]).map(|p| p.to_string())
    }

    #[test]
    fn line_editing_keys_edit_and_end_the_password() {
        assert_eq!(typed(b"secret\r").unwrap(), "secret");
        assert_eq!(typed(b"secret\n").unwrap(), "secret");
        assert_eq!(typed(b"secrex\x7ft\r").unwrap(), "secret");
        assert_eq!(typed(b"wrong\x15right\r").unwrap(), "right");
        assert_eq!(typed("pé\x7fe\r".as_bytes()).unwrap(), "pe");
        assert_eq!(typed(b"a\x1bb\r").unwrap(), "ab");
        assert_eq!(
            typed(b"sec\x03").unwrap_err().kind(),
            io::ErrorKind::Interrupted
        );
        assert_eq!(
            typed(b"\x04").unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
        assert_eq!(
            typed(b"no end").unwrap_err().kind(),
            io::ErrorKind::UnexpectedEof
        );
    }
}
