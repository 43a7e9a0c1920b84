//! What the backup checks read of a segment's `index_metadata.pickle`: `total_elements_added`,
//! how many ids `id_to_label` maps, and `max_seq_id` (where Chroma 0.4 keeps the index's
//! watermark).
//!
//! The file holds a dict with an entry per record in each of its id maps (8.8 MB for 200k
//! records), and a pickle library builds all of it in memory: 62 MB for 200k records, so
//! gigabytes for a collection in the tens of millions, against a backup's bounded memory. The
//! scanner here reads the opcodes once, in a stream, and keeps only the stack of the batch
//! being read (pickle writers set dict items a thousand at a time), the dicts' sizes, and the
//! few values it needs. It knows the opcodes a dict of strings, numbers and None is written
//! with, and the three that wrap such a dict into an object (Chroma 0.x pickles a
//! `PersistentData` object whose state is that dict); a file using any other is read by
//! serde-pickle instead, so the scanner can make a check cheaper but never decides one on its
//! own.
//!
//! The same scan gives the labels of a few ids ([`labels_of`], for a sample of records): only
//! the strings equal to a wanted id are kept, so its memory is the selection's, not the map's.

use std::collections::{HashMap, HashSet};
use std::io::{BufReader, Read};
use std::path::Path;

use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IndexMetadata {
    pub total_elements_added: Option<u64>,
    /// Entries of `id_to_label`.
    pub ids: Option<u64>,
    /// The last log position the index holds (Chroma 0.4; later versions keep it in
    /// `max_seq_id` and write None here).
    pub max_seq_id: Option<i64>,
}

/// Read `path`: streamed when the scanner knows every opcode, else through serde-pickle.
pub fn read(path: &Path) -> Result<IndexMetadata, String> {
    let file = std::fs::File::open(path).map_err(|e| format!("cannot read {}: {e}", name(path)))?;
    match scan(BufReader::with_capacity(1 << 16, file), None) {
        Ok((metadata, _)) => Ok(metadata),
        Err(unusual) => {
            tracing::debug!(%unusual, "index_metadata.pickle read with serde-pickle");
            let bytes =
                std::fs::read(path).map_err(|e| format!("cannot read {}: {e}", name(path)))?;
            parse_whole(&bytes).map_err(|e| format!("{} does not parse: {e}", name(path)))
        }
    }
}

/// The labels `id_to_label` gives each id of `wanted` it maps (`None`: every id), read like
/// [`read`]; a file the scanner declines is parsed whole by serde-pickle.
pub fn labels_of(
    path: &Path,
    wanted: Option<&HashSet<String>>,
) -> Result<HashMap<String, u32>, String> {
    let cannot_read = |e: std::io::Error| format!("cannot read {}: {e}", name(path));
    if let Some(wanted) = wanted {
        let file = std::fs::File::open(path).map_err(cannot_read)?;
        match scan(BufReader::with_capacity(1 << 16, file), Some(wanted)) {
            Ok((_, labels)) => return Ok(labels),
            Err(unusual) => {
                tracing::debug!(%unusual, "index_metadata.pickle read with serde-pickle")
            }
        }
    }
    #[derive(Deserialize)]
    struct IdMap {
        id_to_label: HashMap<String, u32>,
    }
    let bytes = std::fs::read(path).map_err(cannot_read)?;
    let mut labels = serde_pickle::from_slice::<IdMap>(&bytes, Default::default())
        .map_err(|e| format!("{} does not parse: {e}", name(path)))?
        .id_to_label;
    if let Some(wanted) = wanted {
        labels.retain(|id, _| wanted.contains(id));
    }
    Ok(labels)
}

fn name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| path.display().to_string())
}

/// The reference reading, whole in memory, for the files the scanner declines.
fn parse_whole(bytes: &[u8]) -> Result<IndexMetadata, serde_pickle::Error> {
    #[derive(Deserialize)]
    struct Whole {
        total_elements_added: Option<u64>,
        id_to_label: Option<EntryCount>,
        max_seq_id: Option<i64>,
    }
    let whole: Whole = serde_pickle::from_slice(bytes, Default::default())?;
    Ok(IndexMetadata {
        total_elements_added: whole.total_elements_added,
        ids: whole.id_to_label.map(|EntryCount(n)| n),
        max_seq_id: whole.max_seq_id,
    })
}

/// The number of entries of a map, whose keys and values are skipped.
struct EntryCount(u64);

impl<'de> Deserialize<'de> for EntryCount {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Counter;
        impl<'de> serde::de::Visitor<'de> for Counter {
            type Value = EntryCount;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a map")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<EntryCount, A::Error> {
                use serde::de::IgnoredAny;
                let mut entries = 0;
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {
                    entries += 1;
                }
                Ok(EntryCount(entries))
            }
        }
        deserializer.deserialize_map(Counter)
    }
}

/// A value on the pickle stack, kept only as far as the checks need it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Item {
    Mark,
    /// Index into the scanner's dict sizes.
    Dict(usize),
    Int(i64),
    Key(Key),
    /// A string equal to a wanted id: index into the scanner's kept strings.
    Str(usize),
    /// Anything else: other strings, None, floats, lists, tuples.
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Key {
    TotalElementsAdded,
    IdToLabel,
    MaxSeqId,
}

impl Key {
    const ALL: [Self; 3] = [Self::TotalElementsAdded, Self::IdToLabel, Self::MaxSeqId];

    fn text(self) -> &'static str {
        match self {
            Self::TotalElementsAdded => "total_elements_added",
            Self::IdToLabel => "id_to_label",
            Self::MaxSeqId => "max_seq_id",
        }
    }

    fn of(text: &[u8]) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|key| key.text().as_bytes() == text)
    }
}

#[derive(Default)]
struct Scanner<'w> {
    /// The ids whose labels are asked for, and the longest's length.
    wanted: Option<(&'w HashSet<String>, u64)>,
    kept: Vec<String>,
    /// (dict, kept string, value) for each string key set to an integer.
    labels: Vec<(usize, usize, i64)>,
    stack: Vec<Item>,
    dict_sizes: Vec<u64>,
    /// The wanted keys' values, per dict.
    fields: Vec<(usize, Key, Item)>,
    /// Memoised items the checks may need again; the rest read back as `Other`.
    memo: HashMap<u64, Item>,
    memo_next: u64,
}

/// Why the scanner declined a file.
type Declined = String;

/// The metadata, and the labels of the `wanted` ids `id_to_label` maps.
fn scan(
    mut input: impl Read,
    wanted: Option<&HashSet<String>>,
) -> Result<(IndexMetadata, HashMap<String, u32>), Declined> {
    let mut s = Scanner {
        wanted: wanted.map(|w| (w, w.iter().map(|id| id.len() as u64).max().unwrap_or(0))),
        ..Scanner::default()
    };
    loop {
        let op = byte(&mut input)?;
        match op {
            0x80 => skip(&mut input, 1)?,                    // PROTO
            0x95 => skip(&mut input, 8)?,                    // FRAME: frames are transparent
            b'(' => s.stack.push(Item::Mark),                // MARK
            b'}' => s.push_dict(),                           // EMPTY_DICT
            b']' | b')' | b'N' => s.stack.push(Item::Other), // EMPTY_LIST, EMPTY_TUPLE, NONE
            0x88 | 0x89 => s.stack.push(Item::Other),        // NEWTRUE, NEWFALSE
            b'G' => {
                skip(&mut input, 8)?; // BINFLOAT
                s.stack.push(Item::Other);
            }
            b'J' => s
                .stack
                .push(Item::Int(i32::from_le_bytes(array(&mut input)?) as i64)),
            b'K' => s.stack.push(Item::Int(byte(&mut input)? as i64)),
            b'M' => s
                .stack
                .push(Item::Int(u16::from_le_bytes(array(&mut input)?) as i64)),
            0x8a => {
                // LONG1: a little-endian two's complement integer of n bytes.
                let n = byte(&mut input)? as usize;
                let item = if n <= 8 {
                    let mut bytes = [0u8; 8];
                    input.read_exact(&mut bytes[..n]).map_err(ended)?;
                    if n > 0 && bytes[n - 1] & 0x80 != 0 {
                        bytes[n..].fill(0xff);
                    }
                    Item::Int(i64::from_le_bytes(bytes))
                } else {
                    skip(&mut input, n as u64)?;
                    Item::Other
                };
                s.stack.push(item);
            }
            b'X' => {
                let n = u32::from_le_bytes(array(&mut input)?) as u64;
                s.push_string(&mut input, n)?; // BINUNICODE
            }
            0x8c => {
                let n = byte(&mut input)? as u64;
                s.push_string(&mut input, n)?; // SHORT_BINUNICODE
            }
            0x8d => {
                let n = u64::from_le_bytes(array(&mut input)?);
                s.push_string(&mut input, n)?; // BINUNICODE8
            }
            b'B' => {
                let n = u32::from_le_bytes(array(&mut input)?) as u64;
                skip(&mut input, n)?; // BINBYTES
                s.stack.push(Item::Other);
            }
            b'C' => {
                let n = byte(&mut input)? as u64;
                skip(&mut input, n)?; // SHORT_BINBYTES
                s.stack.push(Item::Other);
            }
            0x94 => {
                let top = s.top()?; // MEMOIZE
                s.memoise(s.memo_next, top);
            }
            b'q' => {
                let index = byte(&mut input)? as u64; // BINPUT
                let top = s.top()?;
                s.memoise(index, top);
            }
            b'r' => {
                let index = u32::from_le_bytes(array(&mut input)?) as u64; // LONG_BINPUT
                let top = s.top()?;
                s.memoise(index, top);
            }
            b'h' => {
                let index = byte(&mut input)? as u64; // BINGET
                s.stack
                    .push(s.memo.get(&index).copied().unwrap_or(Item::Other));
            }
            b'j' => {
                let index = u32::from_le_bytes(array(&mut input)?) as u64; // LONG_BINGET
                s.stack
                    .push(s.memo.get(&index).copied().unwrap_or(Item::Other));
            }
            b'u' => {
                // SETITEMS: the pairs above the mark go into the dict below it.
                let pairs = s.pop_to_mark()?;
                s.set_items(&pairs)?;
            }
            b's' => {
                let value = s.pop()?; // SETITEM
                let key = s.pop()?;
                s.set_items(&[key, value])?;
            }
            b'd' => {
                let pairs = s.pop_to_mark()?; // DICT
                s.push_dict();
                s.set_items(&pairs)?;
            }
            b'a' => {
                s.pop()?; // APPEND
            }
            b'e' => {
                s.pop_to_mark()?; // APPENDS
            }
            b'l' | b't' => {
                s.pop_to_mark()?; // LIST, TUPLE
                s.stack.push(Item::Other);
            }
            0x85..=0x87 => {
                // TUPLE1, TUPLE2, TUPLE3
                for _ in 0..(op - 0x84) {
                    s.pop()?;
                }
                s.stack.push(Item::Other);
            }
            b'0' => {
                s.pop()?; // POP
            }
            b'1' => {
                s.pop_to_mark()?; // POP_MARK
            }
            0x93 | 0x81 => {
                // STACK_GLOBAL (module, name) and NEWOBJ (class, args): Chroma 0.x's
                // `PersistentData` object, whose state the BUILD below gives it.
                s.pop()?;
                s.pop()?;
                s.stack.push(Item::Other);
            }
            b'b' => {
                let state = s.pop()?; // BUILD: the object is its state dict
                s.pop()?;
                s.stack.push(state);
            }
            b'.' => return s.finish(), // STOP
            other => return Err(format!("opcode 0x{other:02x} is not one a plain dict uses")),
        }
    }
}

impl Scanner<'_> {
    fn push_dict(&mut self) {
        self.stack.push(Item::Dict(self.dict_sizes.len()));
        self.dict_sizes.push(0);
    }

    fn push_string(&mut self, input: &mut impl Read, len: u64) -> Result<(), Declined> {
        // Only the wanted keys and ids are compared; every other string is skipped unread.
        const LONGEST_KEY: u64 = 32;
        let longest_id = self.wanted.map_or(0, |(_, longest)| longest);
        let item = if len <= longest_id && len > LONGEST_KEY {
            let mut text = vec![0u8; len as usize];
            input.read_exact(&mut text).map_err(ended)?;
            self.keep_if_wanted(text)
        } else if len <= LONGEST_KEY {
            let mut text = [0u8; LONGEST_KEY as usize];
            let text = &mut text[..len as usize];
            input.read_exact(text).map_err(ended)?;
            match Key::of(text) {
                Some(key) => Item::Key(key),
                None if len <= longest_id => self.keep_if_wanted(text.to_vec()),
                None => Item::Other,
            }
        } else {
            skip(input, len)?;
            Item::Other
        };
        self.stack.push(item);
        Ok(())
    }

    fn keep_if_wanted(&mut self, text: Vec<u8>) -> Item {
        let Some((wanted, _)) = self.wanted else {
            return Item::Other;
        };
        match String::from_utf8(text) {
            Ok(id) if wanted.contains(&id) => {
                self.kept.push(id);
                Item::Str(self.kept.len() - 1)
            }
            _ => Item::Other,
        }
    }

    fn memoise(&mut self, index: u64, item: Item) {
        self.memo_next = self.memo_next.max(index + 1);
        if item != Item::Other {
            self.memo.insert(index, item);
        }
    }

    fn top(&self) -> Result<Item, Declined> {
        self.stack.last().copied().ok_or_else(malformed)
    }

    fn pop(&mut self) -> Result<Item, Declined> {
        match self.stack.pop() {
            Some(Item::Mark) | None => Err(malformed()),
            Some(item) => Ok(item),
        }
    }

    fn pop_to_mark(&mut self) -> Result<Vec<Item>, Declined> {
        let mark = self
            .stack
            .iter()
            .rposition(|item| *item == Item::Mark)
            .ok_or_else(malformed)?;
        let items = self.stack.split_off(mark + 1);
        self.stack.pop();
        Ok(items)
    }

    /// Add key-value `pairs` to the dict on top of the stack.
    fn set_items(&mut self, pairs: &[Item]) -> Result<(), Declined> {
        let Some(Item::Dict(dict)) = self.stack.last().copied() else {
            return Err(malformed());
        };
        if pairs.len() % 2 != 0 {
            return Err(malformed());
        }
        self.dict_sizes[dict] += (pairs.len() / 2) as u64;
        for pair in pairs.chunks_exact(2) {
            match (pair[0], pair[1]) {
                (Item::Key(key), value) => {
                    self.fields.push((dict, key, value));
                    // A record may be named like a field.
                    let wanted = self.wanted.is_some_and(|(w, _)| w.contains(key.text()));
                    if let (Item::Int(label), true) = (value, wanted) {
                        self.kept.push(key.text().to_string());
                        self.labels.push((dict, self.kept.len() - 1, label));
                    }
                }
                (Item::Str(id), Item::Int(label)) => self.labels.push((dict, id, label)),
                _ => {}
            }
        }
        Ok(())
    }

    fn finish(self) -> Result<(IndexMetadata, HashMap<String, u32>), Declined> {
        let [Item::Dict(top)] = self.stack[..] else {
            return Err(malformed());
        };
        // A repeated key keeps its last value, as in Python.
        let field = |wanted: Key| {
            self.fields
                .iter()
                .rev()
                .find(|(dict, key, _)| *dict == top && *key == wanted)
                .map(|(_, _, value)| *value)
        };
        let total_elements_added = match field(Key::TotalElementsAdded) {
            None => None,
            Some(Item::Int(n)) if n >= 0 => Some(n as u64),
            Some(_) => return Err("total_elements_added is not a count".into()),
        };
        let id_to_label = match field(Key::IdToLabel) {
            None => None,
            Some(Item::Dict(dict)) => Some(dict),
            Some(_) => return Err("id_to_label is not a dict".into()),
        };
        let mut labels = HashMap::new();
        for &(dict, id, label) in &self.labels {
            if Some(dict) == id_to_label {
                let label = u32::try_from(label).map_err(|_| "a label is not a u32")?;
                labels.insert(self.kept[id].clone(), label);
            }
        }
        let max_seq_id = match field(Key::MaxSeqId) {
            None => None,
            Some(Item::Int(n)) => Some(n),
            Some(Item::Other) => None, // None: kept in max_seq_id
            Some(_) => return Err("max_seq_id is not a number".into()),
        };
        let metadata = IndexMetadata {
            total_elements_added,
            ids: id_to_label.map(|dict| self.dict_sizes[dict]),
            max_seq_id,
        };
        Ok((metadata, labels))
    }
}

fn malformed() -> Declined {
    "the opcodes do not build a dict".into()
}

fn ended(e: std::io::Error) -> Declined {
    format!("the pickle ends early: {e}")
}

fn byte(input: &mut impl Read) -> Result<u8, Declined> {
    Ok(array::<1>(input)?[0])
}

fn array<const N: usize>(input: &mut impl Read) -> Result<[u8; N], Declined> {
    let mut bytes = [0u8; N];
    input.read_exact(&mut bytes).map_err(ended)?;
    Ok(bytes)
}

fn skip(input: &mut impl Read, len: u64) -> Result<(), Declined> {
    let skipped = std::io::copy(&mut input.take(len), &mut std::io::sink()).map_err(ended)?;
    if skipped == len {
        Ok(())
    } else {
        Err(ended(std::io::ErrorKind::UnexpectedEof.into()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    /// Chroma's layout, written by serde-pickle (protocol 3, dict items in batches).
    fn chroma_like(records: u64) -> Vec<u8> {
        #[derive(serde::Serialize)]
        struct Persisted {
            dimensionality: Option<u32>,
            total_elements_added: u64,
            max_seq_id: Option<u64>,
            id_to_label: BTreeMap<String, u64>,
            label_to_id: BTreeMap<u64, String>,
            id_to_seq_id: BTreeMap<String, u64>,
        }
        let ids: Vec<String> = (0..records).map(|i| format!("rec-{i:08}")).collect();
        let persisted = Persisted {
            dimensionality: Some(384),
            total_elements_added: records,
            max_seq_id: None,
            id_to_label: ids.iter().cloned().zip(1..).collect(),
            label_to_id: (1..).zip(ids.iter().cloned()).collect(),
            id_to_seq_id: ids.iter().cloned().zip(1..).collect(),
        };
        serde_pickle::to_vec(&persisted, Default::default()).unwrap()
    }

    #[test]
    fn reads_what_the_reference_parser_reads_in_a_stream() {
        for records in [0, 1, 999, 1000, 1001, 25_000] {
            let bytes = chroma_like(records);
            let scanned = scan(&bytes[..], None).expect("a plain dict is scanned").0;
            assert_eq!(scanned, parse_whole(&bytes).unwrap(), "{records} records");
            assert_eq!(scanned.total_elements_added, Some(records));
            assert_eq!(scanned.ids, Some(records));
        }
    }

    #[test]
    fn gives_the_labels_of_the_wanted_ids_as_the_reference_parser_maps_them() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index_metadata.pickle");
        std::fs::write(&path, chroma_like(3000)).unwrap();
        let all = labels_of(&path, None).unwrap();
        assert_eq!(all.len(), 3000);
        let wanted: HashSet<String> = ["rec-00000000", "rec-00001999", "rec-00002999", "absent"]
            .map(String::from)
            .into();
        let some = labels_of(&path, Some(&wanted)).unwrap();
        assert_eq!(some.len(), 3, "{some:?}");
        for (id, label) in &some {
            assert_eq!(all[id], *label, "{id}");
        }
        // Python's pickle memoises each id where label_to_id holds it, and id_to_label
        // fetches it back; an id may be named like a field; a file the scanner declines
        // is read by the reference parser.
        let memoised: &[u8] = b"\x80\x04}\x94(\x8c\x0blabel_to_id\x94}\x94(K\x01\x8c\x01a\x94K\x02\x8c\nmax_seq_id\x94u\x8c\x0bid_to_label\x94}\x94(h\x03K\x01h\x04K\x02uu.";
        std::fs::write(&path, memoised).unwrap();
        let wanted: HashSet<String> = ["a", "max_seq_id"].map(String::from).into();
        let expected: HashMap<String, u32> =
            [("a".to_string(), 1), ("max_seq_id".to_string(), 2)].into();
        assert_eq!(
            scan(memoised, Some(&wanted)).unwrap().1,
            expected,
            "streamed"
        );
        assert_eq!(labels_of(&path, Some(&wanted)).unwrap(), expected);
        assert_eq!(labels_of(&path, None).unwrap(), expected);
    }

    #[test]
    fn follows_memo_references_and_python_integer_opcodes() {
        // {'id_to_label': {'a': 1}, 'total_elements_added': 300}, memoised as Python does,
        // with the inner dict fetched back from the memo, and 300 written as BININT2.
        let bytes: &[u8] = b"\x80\x04\x95\x00\x00\x00\x00\x00\x00\x00\x00}\x94(\x8c\x0bid_to_label\x94}\x94\x8c\x01a\x94K\x01s0h\x02\x8c\x14total_elements_added\x94M,\x01u.";
        let scanned = scan(bytes, None).expect("scanned").0;
        assert_eq!(
            scanned,
            IndexMetadata {
                total_elements_added: Some(300),
                ids: Some(1),
                max_seq_id: None,
            }
        );
    }

    #[test]
    fn reads_chroma_0x_persistent_data_objects_as_their_state() {
        // As Chroma 0.4-0.6 write it (protocol 5): PersistentData() built with its state
        // dict, here {'dimensionality': 8, 'total_elements_added': 300, 'max_seq_id': 333,
        // 'id_to_label': {'a': 1, 'b': 2}}.
        let mut bytes: Vec<u8> = b"\x80\x05".to_vec();
        let module = b"chromadb.segment.impl.vector.local_persistent_hnsw";
        bytes.push(0x8c);
        bytes.push(module.len() as u8);
        bytes.extend_from_slice(module);
        bytes.extend_from_slice(b"\x94\x8c\x0ePersistentData\x94\x93\x94)\x81\x94}\x94(");
        bytes.extend_from_slice(b"\x8c\x0edimensionality\x94K\x08");
        bytes.extend_from_slice(b"\x8c\x14total_elements_added\x94M,\x01");
        bytes.extend_from_slice(b"\x8c\x0amax_seq_id\x94MM\x01");
        bytes.extend_from_slice(b"\x8c\x0bid_to_label\x94}\x94(\x8c\x01aK\x01\x8c\x01bK\x02u");
        bytes.extend_from_slice(b"ub.");
        let scanned = scan(&bytes[..], None)
            .expect("a PersistentData object is scanned")
            .0;
        assert_eq!(
            scanned,
            IndexMetadata {
                total_elements_added: Some(300),
                ids: Some(2),
                max_seq_id: Some(333),
            }
        );
        assert_eq!(scanned, parse_whole(&bytes).unwrap());
    }

    #[test]
    fn declines_objects_and_broken_files_for_the_reference_parser() {
        // A pickled class instance (GLOBAL ... BUILD), as older Chroma wrote.
        assert!(scan(
            &b"\x80\x02cchromadb\nPersistentData\nq\x00)\x81q\x01}b."[..],
            None
        )
        .unwrap_err()
        .contains("opcode"));
        let bytes = chroma_like(10);
        assert!(scan(&bytes[..bytes.len() / 2], None)
            .unwrap_err()
            .contains("ends early"));
        assert!(
            scan(&b"\x80\x03u."[..], None).is_err(),
            "SETITEMS without a mark"
        );
    }

    #[test]
    fn a_file_either_path_cannot_read_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index_metadata.pickle");
        std::fs::write(&path, b"\x80\x03}(X\x03\x00").unwrap();
        let err = read(&path).unwrap_err();
        assert!(
            err.starts_with("index_metadata.pickle does not parse"),
            "{err}"
        );
        let bytes = chroma_like(3000);
        std::fs::write(&path, &bytes).unwrap();
        assert_eq!(read(&path).unwrap().ids, Some(3000));
    }
}
