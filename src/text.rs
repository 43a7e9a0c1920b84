//! Text on its way to a terminal or a log: what must not reach either as it is.

/// `text` as it may reach a terminal: control characters (escape sequences among them) written
/// out as `\u{1b}` and the like, so strings read from a repository, an archive or a server
/// cannot move the cursor, recolour or rewrite what is shown. Line breaks and tabs stay.
pub fn printable(text: &str) -> std::borrow::Cow<'_, str> {
    if !text
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return std::borrow::Cow::Borrowed(text);
    }
    text.chars()
        .map(|c| {
            if c.is_control() && c != '\n' && c != '\t' {
                c.escape_unicode().to_string()
            } else {
                c.to_string()
            }
        })
        .collect::<String>()
        .into()
}

/// Rewrite the text file at `path` without terminal escape sequences (colours, cursor moves),
/// streaming, and atomically: a reader sees the old file or the new one.
pub fn strip_terminal_codes(path: &std::path::Path) -> std::io::Result<()> {
    let mut input = std::fs::File::open(path)?;
    let temp = crate::atomic_file::create(path)?;
    let (file, temp_path) = temp.into_parts();
    let mut stripped = strip_ansi_escapes::Writer::new(std::io::BufWriter::new(&file));
    std::io::copy(&mut input, &mut stripped)?;
    std::io::Write::flush(&mut stripped)?;
    drop(stripped);
    crate::atomic_file::persist(&file, temp_path, path)
}
