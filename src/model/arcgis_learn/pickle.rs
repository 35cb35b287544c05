//! A restricted unpickler for the `data.pkl` of a PyTorch `.pth`: it understands exactly what
//! `torch.save` writes for a state_dict and refuses everything else.
//!
//! A pickle is a program for a stack machine whose `GLOBAL` opcode imports any Python callable
//! and whose `REDUCE` calls it: loading one with Python's `pickle` runs whatever the file asks
//! for. This reader runs nothing. It knows a fixed list of names (`collections.OrderedDict`,
//! `torch._utils._rebuild_tensor_v2`, `torch._utils._rebuild_parameter`, the typed
//! `torch.*Storage` classes), maps them to plain Rust values, and stops with an error at any
//! other name and at any opcode a state_dict does not need. Storages stay references (persistent
//! ids): their bytes are read by [`crate::model::arcgis_learn::pth`].
//!
//! Hostile input is bounded: the pickle size is capped by the caller, values are shared (never
//! deep-copied) when the memo is read, nesting is capped at [`MAX_DEPTH`] and the number of
//! values on the stack and in the memo at [`MAX_VALUES`].

use std::collections::HashMap;
use std::rc::Rc;

use anyhow::Result;

use crate::bail_input;

/// Deepest nesting of tuples, lists and dicts accepted (a state_dict needs 4).
pub const MAX_DEPTH: u32 = 64;
/// Most values held on the stack and in the memo together (a ResNet-152 state_dict needs a few
/// thousand).
pub const MAX_VALUES: usize = 1 << 20;

/// Element type of a torch storage, from its class name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dtype {
    /// `FloatStorage`.
    F32,
    /// `DoubleStorage`.
    F64,
    /// `HalfStorage`.
    F16,
    /// `BFloat16Storage`.
    BF16,
    /// `LongStorage`.
    I64,
    /// `IntStorage`.
    I32,
    /// `ShortStorage`.
    I16,
    /// `CharStorage`.
    I8,
    /// `ByteStorage`.
    U8,
    /// `BoolStorage`.
    Bool,
}

impl Dtype {
    fn from_storage_class(name: &str) -> Option<Dtype> {
        Some(match name {
            "FloatStorage" => Dtype::F32,
            "DoubleStorage" => Dtype::F64,
            "HalfStorage" => Dtype::F16,
            "BFloat16Storage" => Dtype::BF16,
            "LongStorage" => Dtype::I64,
            "IntStorage" => Dtype::I32,
            "ShortStorage" => Dtype::I16,
            "CharStorage" => Dtype::I8,
            "ByteStorage" => Dtype::U8,
            "BoolStorage" => Dtype::Bool,
            _ => return None,
        })
    }

    /// Bytes per element.
    pub fn size(self) -> usize {
        match self {
            Dtype::F64 | Dtype::I64 => 8,
            Dtype::F32 | Dtype::I32 => 4,
            Dtype::F16 | Dtype::BF16 | Dtype::I16 => 2,
            Dtype::I8 | Dtype::U8 | Dtype::Bool => 1,
        }
    }

    /// The torch name (`float32`, `int64`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Dtype::F32 => "float32",
            Dtype::F64 => "float64",
            Dtype::F16 => "float16",
            Dtype::BF16 => "bfloat16",
            Dtype::I64 => "int64",
            Dtype::I32 => "int32",
            Dtype::I16 => "int16",
            Dtype::I8 => "int8",
            Dtype::U8 => "uint8",
            Dtype::Bool => "bool",
        }
    }
}

/// A storage named by a persistent id: `('storage', torch.FloatStorage, '<key>', 'cpu', numel)`.
#[derive(Debug, Clone, PartialEq)]
pub struct StorageRef {
    /// The record name under `data/` in the `.pth` zip.
    pub key: String,
    /// Element type.
    pub dtype: Dtype,
    /// Number of elements the storage holds.
    pub numel: u64,
}

/// A tensor as `_rebuild_tensor_v2(storage, offset, size, stride, ...)` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct TensorRef {
    /// Where the values are.
    pub storage: StorageRef,
    /// Offset into the storage, in elements.
    pub offset: u64,
    /// Shape.
    pub size: Vec<u64>,
    /// Strides, in elements.
    pub stride: Vec<u64>,
}

/// The callables a torch state_dict pickle may name.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Global {
    OrderedDict,
    RebuildTensorV2,
    RebuildParameter,
    Storage(Dtype),
}

/// A tuple or list, with its nesting depth.
#[derive(Debug, Clone, Default)]
struct Seq {
    depth: u32,
    items: Vec<Value>,
}

/// A dict in insertion order, with its nesting depth.
#[derive(Debug, Clone, Default)]
struct Dict {
    depth: u32,
    items: Vec<(Value, Value)>,
}

/// A value on the machine's stack. Containers are shared, never deep-copied: reading the memo
/// costs one reference count.
#[derive(Debug, Clone)]
enum Value {
    None,
    /// A bool (its value is never needed).
    Bool,
    Int(i64),
    /// A float (its value is never needed: optimizer settings).
    Float,
    Str(Rc<str>),
    Tuple(Rc<Seq>),
    List(Rc<Seq>),
    Dict(Rc<Dict>),
    Global(Global),
    Storage(Rc<StorageRef>),
    Tensor(Rc<TensorRef>),
}

impl Value {
    fn depth(&self) -> u32 {
        match self {
            Value::Tuple(s) | Value::List(s) => s.depth,
            Value::Dict(d) => d.depth,
            _ => 0,
        }
    }

    fn kind(&self) -> &'static str {
        match self {
            Value::None => "None",
            Value::Bool => "a bool",
            Value::Int(_) => "an int",
            Value::Float => "a float",
            Value::Str(_) => "a string",
            Value::Tuple(_) => "a tuple",
            Value::List(_) => "a list",
            Value::Dict(_) => "a dict",
            Value::Global(_) => "a class or function",
            Value::Storage(_) => "a storage",
            Value::Tensor(_) => "a tensor",
        }
    }
}

/// Reads a torch state_dict pickle: the `(name, tensor)` pairs in file order. Accepts a plain
/// state_dict (`OrderedDict` of tensors) and fastai's `{"model": state_dict, "opt": ...}`.
/// `origin` names the pickle in messages.
pub fn load_state_dict(data: &[u8], origin: &str) -> Result<Vec<(String, TensorRef)>> {
    let top = Machine::new(data, origin).run()?;
    let Value::Dict(dict) = &top else {
        bail_input!(
            "{origin} holds {} where a PyTorch state_dict (a dict of tensors) was expected; save the weights with torch.save(model.state_dict(), ...)",
            top.kind()
        );
    };
    let is_key = |k: &Value, name: &str| matches!(k, Value::Str(s) if &**s == name);
    let all_tensors = dict.items.iter().all(|(_, v)| matches!(v, Value::Tensor(_)));
    let dict = match dict.items.iter().find(|(k, _)| is_key(k, "model")) {
        Some((_, Value::Dict(inner))) if !all_tensors => inner.clone(),
        _ => dict.clone(),
    };
    let mut out: Vec<(String, TensorRef)> = Vec::with_capacity(dict.items.len());
    let mut seen = std::collections::HashSet::new();
    for (key, value) in &dict.items {
        let Value::Str(name) = key else {
            bail_input!(
                "{origin}: a state_dict key is {} instead of a string; this is not a PyTorch state_dict",
                key.kind()
            );
        };
        let Value::Tensor(tensor) = value else {
            bail_input!(
                "{origin}: state_dict entry {:?} is {} instead of a tensor; this is not a plain PyTorch state_dict",
                short(name),
                value.kind()
            );
        };
        if !seen.insert(name.clone()) {
            bail_input!(
                "{origin}: state_dict key {:?} appears twice; the file is damaged",
                short(name)
            );
        }
        out.push((name.to_string(), (**tensor).clone()));
    }
    if out.is_empty() {
        bail_input!("{origin} holds an empty state_dict; the .pth has no weights");
    }
    Ok(out)
}

/// A hostile string shortened and quoted for a one-line message.
fn short(text: &str) -> String {
    let mut s: String = text.chars().take(60).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

struct Machine<'a> {
    data: &'a [u8],
    pos: usize,
    origin: &'a str,
    stack: Vec<Value>,
    marks: Vec<usize>,
    memo: HashMap<u32, Value>,
}

/// The names of the opcodes a state_dict never uses, for the refusal message.
fn opcode_name(op: u8) -> &'static str {
    match op {
        b'i' => "INST",
        b'o' => "OBJ",
        0x81 => "NEWOBJ",
        0x92 => "NEWOBJ_EX",
        b'P' => "PERSID",
        b'S' | b'T' | b'U' => "STRING",
        b'V' => "UNICODE",
        b'B' | b'C' | 0x8e => "BINBYTES",
        0x96 => "BYTEARRAY8",
        0x97 => "NEXT_BUFFER",
        0x98 => "READONLY_BUFFER",
        0x82..=0x84 => "EXT",
        b'I' => "INT",
        b'L' => "LONG",
        0x8b => "LONG4",
        b'F' => "FLOAT",
        b'g' => "GET",
        b'p' => "PUT",
        0x8f => "EMPTY_SET",
        0x90 => "ADDITEMS",
        0x91 => "FROZENSET",
        _ => "unknown",
    }
}

impl<'a> Machine<'a> {
    fn new(data: &'a [u8], origin: &'a str) -> Machine<'a> {
        Machine {
            data,
            pos: 0,
            origin,
            stack: Vec::new(),
            marks: Vec::new(),
            memo: HashMap::new(),
        }
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        match self.pos.checked_add(n).filter(|&end| end <= self.data.len()) {
            Some(end) => {
                let bytes = &self.data[self.pos..end];
                self.pos = end;
                Ok(bytes)
            }
            None => bail_input!(
                "{} ends in the middle of a value (truncated pickle); the .pth is damaged, re-save or re-download it",
                self.origin
            ),
        }
    }

    fn u8(&mut self) -> Result<u8> {
        Ok(self.take(1)?[0])
    }

    fn u16(&mut self) -> Result<u16> {
        Ok(u16::from_le_bytes(self.take(2)?.try_into().unwrap_or_default()))
    }

    fn u32(&mut self) -> Result<u32> {
        Ok(u32::from_le_bytes(self.take(4)?.try_into().unwrap_or_default()))
    }

    fn u64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.take(8)?.try_into().unwrap_or_default()))
    }

    fn line(&mut self) -> Result<&'a str> {
        let rest = &self.data[self.pos.min(self.data.len())..];
        let Some(end) = rest.iter().take(256).position(|&b| b == b'\n') else {
            bail_input!(
                "{}: a GLOBAL name is not terminated; the pickle is damaged",
                self.origin
            );
        };
        let text = std::str::from_utf8(&rest[..end]).unwrap_or("<not UTF-8>");
        self.pos += end + 1;
        Ok(text)
    }

    fn text(&mut self, n: u64) -> Result<Value> {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        let bytes = self.take(n)?;
        match std::str::from_utf8(bytes) {
            Ok(s) => Ok(Value::Str(Rc::from(s))),
            Err(_) => bail_input!("{}: a string is not UTF-8; the pickle is damaged", self.origin),
        }
    }

    fn push(&mut self, value: Value) -> Result<()> {
        if value.depth() > MAX_DEPTH {
            bail_input!(
                "{}: values nest deeper than {MAX_DEPTH} levels; a state_dict never does (hostile or damaged file)",
                self.origin
            );
        }
        if self.stack.len() + self.memo.len() >= MAX_VALUES {
            bail_input!(
                "{}: the pickle holds more than {MAX_VALUES} values at once; a state_dict never does (hostile or damaged file)",
                self.origin
            );
        }
        self.stack.push(value);
        Ok(())
    }

    fn pop(&mut self) -> Result<Value> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            bail_input!("{}: the pickle pops an empty stack; the file is damaged", self.origin);
        }
        Ok(self.stack.pop().unwrap_or(Value::None))
    }

    fn top(&mut self) -> Result<&mut Value> {
        let floor = self.marks.last().copied().unwrap_or(0);
        if self.stack.len() <= floor {
            bail_input!("{}: the pickle reads an empty stack; the file is damaged", self.origin);
        }
        let last = self.stack.len() - 1;
        Ok(&mut self.stack[last])
    }

    /// The values above the topmost mark, which is removed.
    fn pop_mark(&mut self) -> Result<Vec<Value>> {
        let Some(mark) = self.marks.pop() else {
            bail_input!(
                "{}: the pickle closes a mark it never opened; the file is damaged",
                self.origin
            );
        };
        Ok(self.stack.split_off(mark))
    }

    fn seq(items: Vec<Value>) -> Seq {
        Seq {
            depth: 1 + items.iter().map(Value::depth).max().unwrap_or(0),
            items,
        }
    }

    fn memo_put(&mut self, index: u32) -> Result<()> {
        let value = self.top()?.clone();
        if self.stack.len() + self.memo.len() >= MAX_VALUES {
            bail_input!(
                "{}: the pickle memoizes more than {MAX_VALUES} values; a state_dict never does (hostile or damaged file)",
                self.origin
            );
        }
        self.memo.insert(index, value);
        Ok(())
    }

    fn memo_get(&mut self, index: u32) -> Result<()> {
        match self.memo.get(&index) {
            Some(value) => {
                let value = value.clone();
                self.push(value)
            }
            None => bail_input!(
                "{}: the pickle reads memo slot {index}, which was never written; the file is damaged",
                self.origin
            ),
        }
    }

    fn global(&self, module: &str, name: &str) -> Result<Global> {
        let known = match (module, name) {
            ("collections", "OrderedDict") => Some(Global::OrderedDict),
            ("torch._utils", "_rebuild_tensor_v2") => Some(Global::RebuildTensorV2),
            ("torch._utils", "_rebuild_parameter") => Some(Global::RebuildParameter),
            ("torch", class) => Dtype::from_storage_class(class).map(Global::Storage),
            _ => None,
        };
        match known {
            Some(global) => Ok(global),
            None => bail_input!(
                "{} asks for the Python object {:?}, which a PyTorch state_dict never uses; refused without running anything (a pickle is code: only collections.OrderedDict, torch._utils._rebuild_tensor_v2 and torch storages are read), so re-save the weights with torch.save(model.state_dict(), ...)",
                self.origin,
                short(&format!("{module}.{name}"))
            ),
        }
    }

    fn run(mut self) -> Result<Value> {
        loop {
            let at = self.pos;
            let op = self.u8()?;
            match op {
                0x80 => {
                    let proto = self.u8()?;
                    if proto > 5 {
                        bail_input!("{}: pickle protocol {proto} is unknown; the file is damaged", self.origin);
                    }
                }
                0x95 => {
                    self.u64()?; // FRAME: a size hint.
                }
                b'.' => {
                    let value = self.pop()?;
                    return Ok(value);
                }
                b'(' => {
                    if self.marks.len() >= MAX_VALUES {
                        bail_input!("{}: too many marks; hostile or damaged pickle", self.origin);
                    }
                    self.marks.push(self.stack.len());
                }
                b'0' => {
                    self.pop()?;
                }
                b'1' => {
                    self.pop_mark()?;
                }
                b'2' => {
                    let value = self.top()?.clone();
                    self.push(value)?;
                }
                b'c' => {
                    let module = self.line()?;
                    let name = self.line()?;
                    let global = self.global(module, name)?;
                    self.push(Value::Global(global))?;
                }
                0x93 => {
                    let name = self.pop()?;
                    let module = self.pop()?;
                    let (Value::Str(module), Value::Str(name)) = (&module, &name) else {
                        bail_input!("{}: STACK_GLOBAL without two strings; the pickle is damaged", self.origin);
                    };
                    let global = self.global(module, name)?;
                    self.push(Value::Global(global))?;
                }
                b'X' => {
                    let n = self.u32()?;
                    let value = self.text(n as u64)?;
                    self.push(value)?;
                }
                0x8c => {
                    let n = self.u8()?;
                    let value = self.text(n as u64)?;
                    self.push(value)?;
                }
                0x8d => {
                    let n = self.u64()?;
                    let value = self.text(n)?;
                    self.push(value)?;
                }
                b'J' => {
                    let v = self.u32()? as i32;
                    self.push(Value::Int(v as i64))?;
                }
                b'K' => {
                    let v = self.u8()?;
                    self.push(Value::Int(v as i64))?;
                }
                b'M' => {
                    let v = self.u16()?;
                    self.push(Value::Int(v as i64))?;
                }
                0x8a => {
                    let n = self.u8()? as usize;
                    let bytes = self.take(n)?;
                    if n > 8 {
                        bail_input!("{}: an integer of {n} bytes is too large for a tensor size", self.origin);
                    }
                    let mut buf = if bytes.last().is_some_and(|b| b & 0x80 != 0) {
                        [0xffu8; 8]
                    } else {
                        [0u8; 8]
                    };
                    buf[..n].copy_from_slice(bytes);
                    self.push(Value::Int(i64::from_le_bytes(buf)))?;
                }
                b'N' => self.push(Value::None)?,
                0x88 | 0x89 => self.push(Value::Bool)?,
                b'G' => {
                    self.take(8)?;
                    self.push(Value::Float)?;
                }
                b')' => self.push(Value::Tuple(Rc::new(Seq::default().with_depth())))?,
                b't' => {
                    let items = self.pop_mark()?;
                    self.push(Value::Tuple(Rc::new(Self::seq(items))))?;
                }
                0x85..=0x87 => {
                    let n = (op - 0x84) as usize;
                    let mut items = Vec::with_capacity(n);
                    for _ in 0..n {
                        items.push(self.pop()?);
                    }
                    items.reverse();
                    self.push(Value::Tuple(Rc::new(Self::seq(items))))?;
                }
                b']' => self.push(Value::List(Rc::new(Seq::default().with_depth())))?,
                b'l' => {
                    let items = self.pop_mark()?;
                    self.push(Value::List(Rc::new(Self::seq(items))))?;
                }
                b'a' | b'e' => {
                    let items = if op == b'a' {
                        vec![self.pop()?]
                    } else {
                        self.pop_mark()?
                    };
                    let origin = self.origin;
                    let Value::List(list) = self.top()? else {
                        bail_input!("{origin}: APPEND to something that is not a list; the pickle is damaged");
                    };
                    let list = Rc::make_mut(list);
                    for item in items {
                        list.depth = list.depth.max(1 + item.depth());
                        list.items.push(item);
                    }
                    self.check_top_depth()?;
                }
                b'}' => self.push(Value::Dict(Rc::new(Dict { depth: 1, items: Vec::new() })))?,
                b'd' => {
                    let items = self.pop_mark()?;
                    let dict = self.pairs_into(Dict { depth: 1, items: Vec::new() }, items)?;
                    self.push(Value::Dict(Rc::new(dict)))?;
                }
                b's' | b'u' => {
                    let items = if op == b's' {
                        let value = self.pop()?;
                        let key = self.pop()?;
                        vec![key, value]
                    } else {
                        self.pop_mark()?
                    };
                    let origin = self.origin;
                    let Value::Dict(dict) = self.top()? else {
                        bail_input!("{origin}: SETITEM on something that is not a dict; the pickle is damaged");
                    };
                    let taken = std::mem::take(Rc::make_mut(dict));
                    let filled = self.pairs_into(taken, items)?;
                    if let Value::Dict(dict) = self.top()? {
                        *Rc::make_mut(dict) = filled;
                    }
                    self.check_top_depth()?;
                }
                b'R' => {
                    let args = self.pop()?;
                    let callable = self.pop()?;
                    let value = self.reduce(callable, args)?;
                    self.push(value)?;
                }
                b'b' => {
                    let _state = self.pop()?;
                    let origin = self.origin;
                    if !matches!(self.top()?, Value::Dict(_)) {
                        bail_input!(
                            "{origin}: the pickle sets the state of something other than an OrderedDict; this is not a plain PyTorch state_dict"
                        );
                    }
                    // The state of a state_dict is its `_metadata` (module versions): not needed.
                }
                b'Q' => {
                    let pid = self.pop()?;
                    let storage = self.persistent(pid)?;
                    self.push(Value::Storage(Rc::new(storage)))?;
                }
                b'q' => {
                    let i = self.u8()? as u32;
                    self.memo_put(i)?;
                }
                b'r' => {
                    let i = self.u32()?;
                    self.memo_put(i)?;
                }
                0x94 => {
                    let i = self.memo.len() as u32;
                    self.memo_put(i)?;
                }
                b'h' => {
                    let i = self.u8()? as u32;
                    self.memo_get(i)?;
                }
                b'j' => {
                    let i = self.u32()?;
                    self.memo_get(i)?;
                }
                other => bail_input!(
                    "{} uses pickle opcode {} (0x{other:02x}) at byte {at}, which a PyTorch state_dict never needs; refused without running anything (a pickle is code), so re-save the weights with torch.save(model.state_dict(), ...)",
                    self.origin,
                    opcode_name(other)
                ),
            }
        }
    }

    fn check_top_depth(&mut self) -> Result<()> {
        let origin = self.origin;
        if self.top()?.depth() > MAX_DEPTH {
            bail_input!(
                "{origin}: values nest deeper than {MAX_DEPTH} levels; a state_dict never does (hostile or damaged file)"
            );
        }
        Ok(())
    }

    fn pairs_into(&self, mut dict: Dict, items: Vec<Value>) -> Result<Dict> {
        if !items.len().is_multiple_of(2) {
            bail_input!(
                "{}: a dict is given an odd number of keys and values; the pickle is damaged",
                self.origin
            );
        }
        let mut it = items.into_iter();
        while let (Some(k), Some(v)) = (it.next(), it.next()) {
            dict.depth = dict.depth.max(1 + k.depth().max(v.depth()));
            dict.items.push((k, v));
        }
        Ok(dict)
    }

    fn reduce(&self, callable: Value, args: Value) -> Result<Value> {
        let origin = self.origin;
        let Value::Tuple(args) = args else {
            bail_input!("{origin}: a call's arguments are not a tuple; the pickle is damaged");
        };
        let args = &args.items;
        match callable {
            Value::Global(Global::OrderedDict) => {
                if !args.is_empty() {
                    bail_input!("{origin}: OrderedDict is built with arguments; this is not a plain PyTorch state_dict");
                }
                Ok(Value::Dict(Rc::new(Dict { depth: 1, items: Vec::new() })))
            }
            Value::Global(Global::RebuildTensorV2) => {
                let (storage, offset, size, stride) = match args.as_slice() {
                    [Value::Storage(s), Value::Int(o), Value::Tuple(size), Value::Tuple(stride), _, _]
                    | [Value::Storage(s), Value::Int(o), Value::Tuple(size), Value::Tuple(stride), _, _, _] => {
                        (s, *o, size, stride)
                    }
                    _ => bail_input!(
                        "{origin}: _rebuild_tensor_v2 is called with unexpected arguments; the pickle is damaged or not from torch.save"
                    ),
                };
                let ints = |t: &Seq, what: &str| -> Result<Vec<u64>> {
                    t.items
                        .iter()
                        .map(|v| match v {
                            Value::Int(i) if *i >= 0 => Ok(*i as u64),
                            _ => bail_input!("{origin}: a tensor {what} is not a list of non-negative integers; the pickle is damaged"),
                        })
                        .collect()
                };
                let (size, stride) = (ints(size, "size")?, ints(stride, "stride")?);
                if size.len() != stride.len() || size.len() > 8 || offset < 0 {
                    bail_input!("{origin}: a tensor has a size, stride or offset that do not agree; the pickle is damaged");
                }
                Ok(Value::Tensor(Rc::new(TensorRef {
                    storage: (**storage).clone(),
                    offset: offset as u64,
                    size,
                    stride,
                })))
            }
            Value::Global(Global::RebuildParameter) => match args.as_slice() {
                [Value::Tensor(t), _, _] => Ok(Value::Tensor(t.clone())),
                _ => bail_input!("{origin}: _rebuild_parameter is called with unexpected arguments; the pickle is damaged"),
            },
            other => bail_input!(
                "{origin}: the pickle calls {}, which a PyTorch state_dict never does; refused without running anything",
                other.kind()
            ),
        }
    }

    fn persistent(&self, pid: Value) -> Result<StorageRef> {
        let origin = self.origin;
        let Value::Tuple(pid) = pid else {
            bail_input!(
                "{origin}: a persistent id is {} instead of a storage tuple; this is not a torch.save file",
                pid.kind()
            );
        };
        match pid.items.as_slice() {
            [Value::Str(tag), Value::Global(Global::Storage(dtype)), Value::Str(key), Value::Str(_location), Value::Int(numel)]
                if &**tag == "storage" && *numel >= 0 =>
            {
                Ok(StorageRef {
                    key: key.to_string(),
                    dtype: *dtype,
                    numel: *numel as u64,
                })
            }
            _ => bail_input!(
                "{origin}: a persistent id is not ('storage', <torch storage class>, key, location, size); this is not a torch.save file"
            ),
        }
    }
}

impl Seq {
    fn with_depth(mut self) -> Seq {
        self.depth = 1;
        self
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A pickle of `OrderedDict([("w", tensor of storage "0": float32, shape [2], stride [1])])`
    /// as protocol 2 writes it.
    pub(crate) fn state_dict_pickle() -> Vec<u8> {
        let mut p = vec![0x80, 2];
        p.extend(b"ccollections\nOrderedDict\nq\x00)Rq\x01(X\x01\x00\x00\x00w");
        p.extend(b"ctorch._utils\n_rebuild_tensor_v2\nq\x02((X\x07\x00\x00\x00storage");
        p.extend(b"ctorch\nFloatStorage\nq\x03X\x01\x00\x00\x000X\x03\x00\x00\x00cpuK\x02tQ");
        p.extend(b"K\x00K\x02\x85K\x01\x85\x89h\x00)Rtq\x04Rq\x05u}q\x06bq\x07.");
        p
    }

    #[test]
    fn reads_a_state_dict() {
        let sd = load_state_dict(&state_dict_pickle(), "t.pth").unwrap();
        assert_eq!(sd.len(), 1);
        let (name, t) = &sd[0];
        assert_eq!(name, "w");
        assert_eq!(t.storage.key, "0");
        assert_eq!(t.storage.dtype, Dtype::F32);
        assert_eq!((t.offset, t.size.clone(), t.stride.clone()), (0, vec![2], vec![1]));
    }

    #[test]
    fn refuses_any_other_global_without_running_it() {
        // cos\nsystem\n(S'echo pwned'\ntR.  — the classic.
        let evil = b"cos\nsystem\n(X\x0a\x00\x00\x00echo pwnedtR.";
        let err = load_state_dict(evil, "evil.pth").unwrap_err();
        assert_eq!(crate::error::exit_code(&err), 2);
        let message = err.to_string();
        assert!(
            message.contains("os.system") && message.contains("evil.pth"),
            "{message}"
        );
        // The same through STACK_GLOBAL (protocol 4).
        let evil4 = b"\x80\x04\x8c\x02os\x8c\x06system\x93.";
        assert!(load_state_dict(evil4, "e.pth")
            .unwrap_err()
            .to_string()
            .contains("os.system"));
        // Opcodes that build arbitrary objects.
        let obj = b"\x80\x02(ccollections\nOrderedDict\no.";
        assert!(load_state_dict(obj, "o.pth").unwrap_err().to_string().contains("OBJ"));
    }

    #[test]
    fn refuses_damaged_and_hostile_shapes() {
        let full = state_dict_pickle();
        for cut in [1, 10, 40, full.len() - 1] {
            let err = load_state_dict(&full[..cut], "t.pth").unwrap_err();
            assert_eq!(crate::error::exit_code(&err), 2, "cut at {cut}");
        }
        // A billion laughs: each list holds the previous one twice. Shared, not copied, and the
        // nesting cap stops it.
        let mut p = b"\x80\x02]q\x00".to_vec();
        for i in 0..100u8 {
            p.extend([b'(', b'h', i, b'h', i, b'l', b'q', i + 1]);
        }
        p.push(b'.');
        assert!(load_state_dict(&p, "laughs.pth")
            .unwrap_err()
            .to_string()
            .contains("nest"));
        // Not a dict at the top.
        assert!(load_state_dict(b"\x80\x02K\x01.", "i.pth")
            .unwrap_err()
            .to_string()
            .contains("an int"));
        // A dict of something other than tensors.
        let not_tensors = b"\x80\x02}(X\x01\x00\x00\x00aK\x01u.";
        assert!(load_state_dict(not_tensors, "d.pth")
            .unwrap_err()
            .to_string()
            .contains("instead of a tensor"));
    }

    #[test]
    fn accepts_fastai_model_and_opt_form() {
        // {"model": <state_dict>, "opt": {"lr": 0.1, "betas": [0.9]}}
        let inner = state_dict_pickle();
        let inner = &inner[2..inner.len() - 1]; // without PROTO and STOP
        let mut p = vec![0x80, 2, b'}', b'(', b'X', 5, 0, 0, 0];
        p.extend(b"model");
        p.extend(inner);
        p.extend(b"X\x03\x00\x00\x00opt}(X\x02\x00\x00\x00lrG?\xb9\x99\x99\x99\x99\x99\x9a");
        p.extend(b"X\x05\x00\x00\x00betas]G?\xec\xcc\xcc\xcc\xcc\xcc\xcda");
        p.extend(b"X\x04\x00\x00\x00flagN\x88\x86uu.");
        let sd = load_state_dict(&p, "fastai.pth").unwrap();
        assert_eq!(sd.len(), 1);
        assert_eq!(sd[0].0, "w");
    }
}
