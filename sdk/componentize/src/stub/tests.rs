//! The rewrite on small modules written with `wasm-encoder`, read back with `wasmparser`.

use wasm_encoder::{
    CodeSection, ConstExpr, ElementSection, Elements, EntityType, ExportKind, ExportSection, Function, FunctionSection, ImportSection,
    MemoryType, Module, NameMap, NameSection, RefType, StartSection, TableSection, TableType, TypeSection, ValType,
};
use wasmparser::{ExternalKind, Name, Operator, Parser, Payload, Validator};

use super::stub_wasi_imports;
use crate::Error;

const ENV: &str = "wasi:cli/environment@0.2.6";
const STREAMS: &str = "wasi:io/streams@0.2.6";

/// Types: 0 = `[] -> []`, 1 = `[i32] -> [i32]`.
fn types() -> TypeSection {
    let mut types = TypeSection::new();
    types.ty().function([], []);
    types.ty().function([ValType::I32], [ValType::I32]);
    types
}

/// Old function indices: 0 `env#f`, 1 `ENV#get-environment`, 2 `env#g`, 3 `STREAMS#drop`
/// (imports, with a memory import between them), 4 `d0`, 5 `d1` (defined). `d0` calls every
/// import, `d1` takes a `ref.func` of a WASI import and calls `d0`; the table's element segment,
/// the exports and the start function refer to imports and defined functions alike.
fn module(with_names: bool) -> Vec<u8> {
    let mut imports = ImportSection::new();
    imports.import("env", "f", EntityType::Function(0));
    imports.import(ENV, "get-environment", EntityType::Function(0));
    imports.import("env", "memory", MemoryType { minimum: 1, maximum: None, memory64: false, shared: false, page_size_log2: None });
    imports.import("env", "g", EntityType::Function(1));
    imports.import(STREAMS, "drop", EntityType::Function(1));

    let mut functions = FunctionSection::new();
    functions.function(0).function(0);
    let mut tables = TableSection::new();
    tables.table(TableType { element_type: RefType::FUNCREF, minimum: 3, maximum: None, table64: false, shared: false });
    let mut exports = ExportSection::new();
    exports.export("d0", ExportKind::Func, 4).export("g", ExportKind::Func, 2).export("drop", ExportKind::Func, 3);
    let mut elements = ElementSection::new();
    elements.active(Some(0), &ConstExpr::i32_const(0), Elements::Functions([1, 2, 4].as_slice().into()));

    let mut code = CodeSection::new();
    let mut d0 = Function::new([]);
    d0.instructions().call(0).call(1).i32_const(7).call(2).call(3).drop().end();
    code.function(&d0);
    let mut d1 = Function::new([]);
    d1.instructions().ref_func(1).drop().call(4).end();
    code.function(&d1);

    let mut module = Module::new();
    module
        .section(&types())
        .section(&imports)
        .section(&functions)
        .section(&tables)
        .section(&exports)
        .section(&StartSection { function_index: 5 })
        .section(&elements)
        .section(&code);
    if with_names {
        let mut names = NameSection::new();
        let mut functions = NameMap::new();
        for (index, name) in ["f", "imported-get-environment", "g", "imported-drop", "d0", "d1"].into_iter().enumerate() {
            functions.append(index as u32, name);
        }
        names.functions(&functions);
        module.section(&names);
    }
    module.finish()
}

/// What a module says about its functions, read back.
#[derive(Debug, Default)]
struct Read {
    imports: Vec<(String, String)>,
    /// Type index of each defined function.
    defined: Vec<u32>,
    /// The functions each body calls or takes a `ref.func` of, and whether it is only `unreachable`.
    bodies: Vec<(Vec<u32>, bool)>,
    exports: Vec<(String, u32)>,
    start: Option<u32>,
    elements: Vec<u32>,
    names: Vec<(u32, String)>,
}

fn read(wasm: &[u8]) -> Read {
    Validator::new().validate_all(wasm).expect("the rewritten module validates");
    let mut read = Read::default();
    for payload in Parser::new(0).parse_all(wasm) {
        match payload.expect("parses") {
            Payload::ImportSection(s) => {
                read.imports = s.into_imports().map(|i| i.map(|i| (i.module.to_owned(), i.name.to_owned()))).collect::<Result<_, _>>().expect("imports");
            }
            Payload::FunctionSection(s) => read.defined = s.into_iter().collect::<Result<_, _>>().expect("functions"),
            Payload::ExportSection(s) => {
                for export in s {
                    let export = export.expect("export");
                    assert_eq!(export.kind, ExternalKind::Func);
                    read.exports.push((export.name.to_owned(), export.index));
                }
            }
            Payload::StartSection { func, .. } => read.start = Some(func),
            Payload::ElementSection(s) => {
                for element in s {
                    match element.expect("element").items {
                        wasmparser::ElementItems::Functions(f) => read.elements.extend(f.into_iter().map(|i| i.expect("index"))),
                        wasmparser::ElementItems::Expressions(..) => panic!("written as function indices"),
                    }
                }
            }
            Payload::CodeSectionEntry(body) => {
                let mut referenced = Vec::new();
                let mut operators = Vec::new();
                for op in body.get_operators_reader().expect("operators") {
                    let op = op.expect("operator");
                    if let Operator::Call { function_index } | Operator::RefFunc { function_index } = op {
                        referenced.push(function_index);
                    }
                    operators.push(op);
                }
                let traps = matches!(operators.as_slice(), [Operator::Unreachable, Operator::End]);
                read.bodies.push((referenced, traps));
            }
            Payload::CustomSection(s) => {
                if let wasmparser::KnownCustom::Name(names) = s.as_known() {
                    for name in names {
                        if let Name::Function(map) = name.expect("name subsection") {
                            read.names = map.into_iter().map(|n| n.map(|n| (n.index, n.name.to_owned()))).collect::<Result<_, _>>().expect("names");
                        }
                    }
                }
            }
            _ => {}
        }
    }
    read
}

#[test]
fn wasi_imports_become_traps_and_every_function_index_follows() {
    let out = read(&stub_wasi_imports(&module(true)).expect("rewritten"));
    // Imports: the two `env` functions and the memory stay, in their order.
    let imports: Vec<_> = out.imports.iter().map(|(m, n)| format!("{m}#{n}")).collect();
    assert_eq!(imports, ["env#f", "env#memory", "env#g"]);
    // New indices: f 0, g 1, get-environment 2, drop 3 (the stubs, first of the defined
    // functions, with the imports' types), d0 4, d1 5 (unchanged).
    assert_eq!(out.defined, [0, 1, 0, 0]);
    assert_eq!(out.bodies, [(vec![], true), (vec![], true), (vec![0, 2, 1, 3], false), (vec![2, 4], false)]);
    assert_eq!(out.exports, [("d0".to_owned(), 4), ("g".to_owned(), 1), ("drop".to_owned(), 3)]);
    assert_eq!(out.start, Some(5));
    assert_eq!(out.elements, [2, 1, 4]);
    let names: Vec<_> = out.names.iter().map(|(i, n)| (*i, n.as_str())).collect();
    assert_eq!(names, [(0, "f"), (1, "g"), (2, "wasi:cli/environment@0.2.6#get-environment"), (3, "wasi:io/streams@0.2.6#drop"), (4, "d0"), (5, "d1")]);
}

#[test]
fn a_module_without_a_name_section_gets_one_naming_the_stubs() {
    let out = read(&stub_wasi_imports(&module(false)).expect("rewritten"));
    let names: Vec<_> = out.names.iter().map(|(i, n)| (*i, n.as_str())).collect();
    assert_eq!(names, [(2, "wasi:cli/environment@0.2.6#get-environment"), (3, "wasi:io/streams@0.2.6#drop")]);
}

#[test]
fn a_module_of_imports_only_gets_function_and_code_sections_for_its_stubs() {
    let mut imports = ImportSection::new();
    imports.import(ENV, "exit", EntityType::Function(1));
    let mut exports = ExportSection::new();
    exports.export("exit", ExportKind::Func, 0);
    let mut module = Module::new();
    module.section(&types()).section(&imports).section(&exports);
    let out = read(&stub_wasi_imports(&module.finish()).expect("rewritten"));
    assert!(out.imports.is_empty(), "{:?}", out.imports);
    assert_eq!((out.defined, out.bodies), (vec![1], vec![(vec![], true)]));
    assert_eq!(out.exports, [("exit".to_owned(), 0)]);
}

#[test]
fn a_module_without_wasi_imports_is_returned_as_it_is() {
    let mut imports = ImportSection::new();
    imports.import("onecard:plugin/log@1.0.0", "debug", EntityType::Function(0));
    let mut module = Module::new();
    module.section(&types()).section(&imports);
    let bytes = module.finish();
    assert_eq!(stub_wasi_imports(&bytes).expect("unchanged"), bytes);
}

#[test]
fn a_wasi_memory_import_is_refused_naming_it() {
    let mut imports = ImportSection::new();
    imports.import(STREAMS, "buffer", MemoryType { minimum: 1, maximum: None, memory64: false, shared: false, page_size_log2: None });
    let mut module = Module::new();
    module.section(&imports);
    let err = stub_wasi_imports(&module.finish()).expect_err("a memory cannot be a trap");
    assert!(matches!(&err, Error::WasiNotAFunction { kind: "memory", name, .. } if name == "buffer"), "{err:?}");
    assert!(err.to_string().starts_with("COMPONENTIZE_WASI_NOT_A_FUNCTION: the module imports the memory `wasi:io/streams@0.2.6#buffer`"), "{err}");
}

#[test]
fn a_component_or_garbage_is_refused() {
    let component = wasm_encoder::Component::new().finish();
    assert!(matches!(stub_wasi_imports(&component), Err(Error::NotACoreModule)));
    assert!(matches!(stub_wasi_imports(b"not wasm"), Err(Error::InvalidWasm(_))));
}
