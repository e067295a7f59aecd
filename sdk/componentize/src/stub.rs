//! Define a core module's WASI function imports inside the module, as traps.
//!
//! The function index space lists imported functions first, then defined ones. The rewrite keeps
//! the other imports in their order, and defines one function per WASI import, with the import's
//! type and the body `unreachable`, ahead of the module's own functions:
//!
//! ```text
//! before: [imports: k0 w0 k1 w1] [defined: d0 d1 …]
//! after:  [imports: k0 k1]        [defined: w0 w1 d0 d1 …]
//! ```
//!
//! so the module's own functions keep their indices and only the imported ones move. Every
//! reference to a function index (calls, `ref.func`, element segments, exports, the start
//! function, the name section) goes through [`Rewriter::function_index`], by
//! `wasm_encoder::reencode`. The stubs are named in the name section after the import they replace
//! ([`crate::stub_name`]), so a trap in one still says which WASI function the plugin called.

use wasm_encoder::reencode::{Error as ReencodeError, Reencode, utils};
use wasm_encoder::{CodeSection, Function, FunctionSection, ImportSection, Module, NameMap, NameSection, SectionId};
use wasmparser::{Encoding, Parser, Payload, TypeRef};

use crate::{Error, WASI_PREFIX, stub_name};

/// `core` with every function imported from a `wasi:` module defined as a trap (the input itself
/// when it has none). A WASI import of anything but a function is refused.
pub fn stub_wasi_imports(core: &[u8]) -> Result<Vec<u8>, Error> {
    let plan = Plan::of(core)?;
    if plan.stubs.is_empty() {
        return Ok(core.to_vec());
    }
    let mut rewriter = Rewriter { plan, functions_written: false, code_written: false, names_written: false };
    let mut module = Module::new();
    rewriter.parse_core_module(&mut module, Parser::new(0), core)?;
    Ok(module.finish())
}

/// A WASI import turned into a defined function.
#[derive(Debug)]
struct Stub {
    type_index: u32,
    /// `module#name` of the import.
    name: String,
}

/// Where each imported function goes.
#[derive(Debug)]
struct Plan {
    /// The new index of each imported function, by its old index.
    imported: Vec<u32>,
    /// The stubs, in the order they are defined (the first at index `kept`).
    stubs: Vec<Stub>,
}

impl Plan {
    fn of(core: &[u8]) -> Result<Self, Error> {
        // (old index, is WASI) of every imported function, in import order.
        let mut functions = Vec::new();
        let mut stubs = Vec::new();
        for payload in Parser::new(0).parse_all(core) {
            match payload? {
                Payload::Version { encoding: Encoding::Module, .. } => {}
                Payload::Version { .. } => return Err(Error::NotACoreModule),
                Payload::ImportSection(section) => {
                    for import in section.into_imports() {
                        let import = import?;
                        let wasi = import.module.starts_with(WASI_PREFIX);
                        let kind = match import.ty {
                            TypeRef::Func(type_index) | TypeRef::FuncExact(type_index) => {
                                functions.push(wasi);
                                if wasi {
                                    stubs.push(Stub { type_index, name: stub_name(import.module, import.name) });
                                }
                                continue;
                            }
                            TypeRef::Table(_) => "table",
                            TypeRef::Memory(_) => "memory",
                            TypeRef::Global(_) => "global",
                            TypeRef::Tag(_) => "tag",
                        };
                        if wasi {
                            return Err(Error::WasiNotAFunction { module: import.module.into(), name: import.name.into(), kind });
                        }
                    }
                    // Nothing after the import section changes the plan.
                    break;
                }
                _ => {}
            }
        }
        let kept = functions.iter().filter(|wasi| !**wasi).count() as u32;
        let (mut next_kept, mut next_stub) = (0, kept);
        let imported = functions
            .into_iter()
            .map(|wasi| {
                let counter = if wasi { &mut next_stub } else { &mut next_kept };
                *counter += 1;
                *counter - 1
            })
            .collect();
        Ok(Plan { imported, stubs })
    }

    fn function_index(&self, old: u32) -> u32 {
        self.imported.get(old as usize).copied().unwrap_or(old)
    }

    /// The stubs' new indices and names.
    fn stub_names(&self) -> impl Iterator<Item = (u32, &str)> {
        let first = (self.imported.len() - self.stubs.len()) as u32;
        (first..).zip(self.stubs.iter().map(|s| s.name.as_str()))
    }
}

/// Re-encodes a module along its [`Plan`]; each `*_written` says whether that part of the stubs is
/// in the output yet (a module with no function, code or name section gets one).
#[derive(Debug)]
struct Rewriter {
    plan: Plan,
    functions_written: bool,
    code_written: bool,
    names_written: bool,
}

type Result<T, E = ReencodeError<Error>> = std::result::Result<T, E>;

impl Rewriter {
    fn stub_functions(&mut self, functions: &mut FunctionSection) {
        for stub in &self.plan.stubs {
            functions.function(stub.type_index);
        }
        self.functions_written = true;
    }

    fn stub_bodies(&mut self, code: &mut CodeSection) {
        for _ in &self.plan.stubs {
            let mut body = Function::new([]);
            body.instructions().unreachable().end();
            code.function(&body);
        }
        self.code_written = true;
    }

    /// The function names: the module's own (moved to the new indices, in index order), the
    /// stubs' replacing the imports'.
    fn function_names(&mut self, names: &mut NameSection, map: Option<wasmparser::NameMap<'_>>) -> Result<()> {
        let mut entries: Vec<(u32, String)> = Vec::new();
        for naming in map.into_iter().flatten() {
            let naming = naming?;
            entries.push((self.plan.function_index(naming.index), naming.name.to_owned()));
        }
        entries.retain(|(index, _)| !self.plan.stub_names().any(|(stub, _)| stub == *index));
        entries.extend(self.plan.stub_names().map(|(index, name)| (index, name.to_owned())));
        entries.sort_by_key(|(index, _)| *index);
        let mut map = NameMap::new();
        for (index, name) in &entries {
            map.append(*index, name);
        }
        names.functions(&map);
        self.names_written = true;
        Ok(())
    }

    /// Locals or labels, per function: moved to the new function indices, in index order.
    fn indirect_names(&mut self, map: wasmparser::IndirectNameMap<'_>) -> Result<wasm_encoder::IndirectNameMap> {
        let mut entries = Vec::new();
        for naming in map {
            let naming = naming?;
            entries.push((self.plan.function_index(naming.index), utils::name_map::<Error>(naming.names, Ok)?));
        }
        entries.sort_by_key(|(index, _)| *index);
        let mut out = wasm_encoder::IndirectNameMap::new();
        for (index, names) in &entries {
            out.append(*index, names);
        }
        Ok(out)
    }
}

/// The position of a section in a module (the spec's order, which is not the order of the ids).
fn position(id: SectionId) -> u8 {
    match id {
        SectionId::Custom => 0,
        SectionId::Type => 1,
        SectionId::Import => 2,
        SectionId::Function => 3,
        SectionId::Table => 4,
        SectionId::Memory => 5,
        SectionId::Tag => 6,
        SectionId::Global => 7,
        SectionId::Export => 8,
        SectionId::Start => 9,
        SectionId::Element => 10,
        SectionId::DataCount => 11,
        SectionId::Code => 12,
        SectionId::Data => 13,
    }
}

impl Reencode for Rewriter {
    type Error = Error;

    fn function_index(&mut self, func: u32) -> Result<u32> {
        Ok(self.plan.function_index(func))
    }

    fn parse_import_section(&mut self, imports: &mut ImportSection, section: wasmparser::ImportSectionReader<'_>) -> Result<()> {
        for import in section.into_imports() {
            let import = import?;
            if !import.module.starts_with(WASI_PREFIX) {
                imports.import(import.module, import.name, self.entity_type(import.ty)?);
            }
        }
        Ok(())
    }

    fn parse_function_section(&mut self, functions: &mut FunctionSection, section: wasmparser::FunctionSectionReader<'_>) -> Result<()> {
        self.stub_functions(functions);
        utils::parse_function_section(self, functions, section)
    }

    fn parse_code_section(&mut self, code: &mut CodeSection, section: wasmparser::CodeSectionReader<'_>) -> Result<()> {
        self.stub_bodies(code);
        utils::parse_code_section(self, code, section)
    }

    fn intersperse_section_hook(&mut self, module: &mut Module, _after: Option<SectionId>, before: Option<SectionId>) -> Result<()> {
        let next = before.map_or(u8::MAX, position);
        if !self.functions_written && next > position(SectionId::Function) {
            let mut functions = FunctionSection::new();
            self.stub_functions(&mut functions);
            module.section(&functions);
        }
        if !self.code_written && next > position(SectionId::Code) {
            let mut code = CodeSection::new();
            self.stub_bodies(&mut code);
            module.section(&code);
        }
        if !self.names_written && before.is_none() {
            let mut names = NameSection::new();
            self.function_names(&mut names, None)?;
            module.section(&names);
        }
        Ok(())
    }

    fn custom_name_section(&mut self, section: wasmparser::NameSectionReader<'_>) -> Result<NameSection> {
        let mut names = utils::custom_name_section(self, section)?;
        if !self.names_written {
            // The section held at most the module's name: the stubs' names follow it.
            self.function_names(&mut names, None)?;
        }
        Ok(names)
    }

    fn parse_custom_name_subsection(&mut self, names: &mut NameSection, section: wasmparser::Name<'_>) -> Result<()> {
        match section {
            wasmparser::Name::Module { .. } => utils::parse_custom_name_subsection(self, names, section),
            wasmparser::Name::Function(map) => self.function_names(names, Some(map)),
            other => {
                if !self.names_written {
                    // Function names come before every other subsection but the module's name.
                    self.function_names(names, None)?;
                }
                match other {
                    wasmparser::Name::Local(map) => names.locals(&self.indirect_names(map)?),
                    wasmparser::Name::Label(map) => names.labels(&self.indirect_names(map)?),
                    other => return utils::parse_custom_name_subsection(self, names, other),
                }
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests;
