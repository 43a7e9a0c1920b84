//! HTML tables: columns of text or figures, rows of escaped cells.

use super::*;

/// A table cell: text, escaped when written, and an optional CSS class.
pub(crate) struct Cell {
    pub(crate) text: String,
    pub(crate) class: Option<&'static str>,
    /// A link the text leads to (a relative path or `file:` URL, followed only when clicked).
    pub(crate) href: Option<String>,
}

impl Cell {
    pub(crate) fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            class: None,
            href: None,
        }
    }

    pub(crate) fn link(text: impl Into<String>, href: String) -> Self {
        Self {
            href: Some(href),
            ..Self::text(text)
        }
    }

    pub(crate) fn with_class(text: impl Into<String>, class: &'static str) -> Self {
        Self {
            text: text.into(),
            class: Some(class),
            href: None,
        }
    }
}

/// A table column: its heading, and whether it holds figures (aligned right).
pub(crate) struct Column {
    pub(crate) title: &'static str,
    pub(crate) figure: bool,
}

impl Column {
    pub(crate) fn text(title: &'static str) -> Self {
        Self {
            title,
            figure: false,
        }
    }

    pub(crate) fn figure(title: &'static str) -> Self {
        Self {
            title,
            figure: true,
        }
    }

    /// The class of this column's cells, with the cell's own class if it has one.
    pub(crate) fn class(&self, cell: Option<&str>) -> Option<String> {
        match (self.figure, cell) {
            (true, Some(class)) => Some(format!("num {class}")),
            (true, None) => Some("num".to_string()),
            (false, class) => class.map(str::to_string),
        }
    }
}

pub(crate) enum Row {
    Cells(Vec<Cell>),
    /// A heading across the table that starts a group of rows.
    Group(&'static str),
    /// A sentence across the table, in place of rows.
    Note(&'static str),
}

pub(crate) fn table(html: &mut String, id: &str, columns: &[Column], rows: &[Row]) {
    let _ = write!(html, "<table id=\"{id}\">\n<thead><tr>");
    for column in columns {
        cell(html, "th", column.class(None).as_deref(), column.title);
    }
    html.push_str("</tr></thead>\n<tbody>\n");
    let span = columns.len();
    for row in rows {
        match row {
            Row::Cells(cells) => {
                html.push_str("<tr>");
                for (column, c) in columns.iter().zip(cells) {
                    match &c.href {
                        Some(href) => {
                            link_cell(html, column.class(c.class).as_deref(), &c.text, href)
                        }
                        None => cell(html, "td", column.class(c.class).as_deref(), &c.text),
                    }
                }
                html.push_str("</tr>\n");
            }
            Row::Group(title) => {
                let _ = writeln!(
                    html,
                    "<tr class=\"group\"><th colspan=\"{span}\">{}</th></tr>",
                    escape(title)
                );
            }
            Row::Note(text) => {
                let _ = writeln!(
                    html,
                    "<tr><td class=\"note\" colspan=\"{span}\">{}</td></tr>",
                    escape(text)
                );
            }
        }
    }
    html.push_str("</tbody>\n</table>\n");
}

/// One `<td>` or `<th>`; `class` comes from this file, `text` from anywhere.
pub(crate) fn cell(html: &mut String, tag: &str, class: Option<&str>, text: &str) {
    match class {
        Some(class) => {
            let _ = write!(html, "<{tag} class=\"{class}\">{}</{tag}>", escape(text));
        }
        None => {
            let _ = write!(html, "<{tag}>{}</{tag}>", escape(text));
        }
    }
}

/// A `<td>` whose text is a link to `href`.
fn link_cell(html: &mut String, class: Option<&str>, text: &str, href: &str) {
    let class = class.map(|c| format!(" class=\"{c}\"")).unwrap_or_default();
    let _ = write!(
        html,
        "<td{class}><a href=\"{}\">{}</a></td>",
        escape(href),
        escape(text)
    );
}
