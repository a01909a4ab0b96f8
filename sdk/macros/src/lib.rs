//! Attribute macros of the Switchyard SDK: `#[transform]`, `#[check]`,
//! `#[route]`, `#[response_check]` and `#[row_map]`. Each keeps the function as written (so it can be unit-tested
//! natively) and, for WebAssembly targets, adds the component exports that
//! call it. Misuse is reported as a compile error on the offending tokens.

use proc_macro::TokenStream;
use proc_macro2::TokenStream as TokenStream2;
use quote::quote;
use syn::{FnArg, ItemFn, Path, ReturnType, parse_macro_input};

/// The plugin kinds, one per WIT world.
#[derive(Clone, Copy)]
enum Kind {
    Transform,
    Check,
    Route,
    ResponseCheck,
    RowMap,
}

impl Kind {
    fn attribute(self) -> &'static str {
        match self {
            Kind::Transform => "transform",
            Kind::Check => "check",
            Kind::Route => "route",
            Kind::ResponseCheck => "response_check",
            Kind::RowMap => "row_map",
        }
    }

    fn expected_signature(self) -> &'static str {
        match self {
            Kind::Transform => {
                "fn(&Event[, &Config]) -> Result<Vec<RowMutation>, PluginError> or fn(&EventView[, &Config], &mut Rows) -> Result<(), PluginError>"
            }
            Kind::Check => "fn(&Pair) -> Result<Verdict, PluginError> or fn(&Pair, &Config) -> …",
            Kind::Route => {
                "fn(&Request) -> Result<Decision, PluginError> or fn(&Request, &Config) -> …"
            }
            Kind::ResponseCheck => {
                "fn(&Exchange) -> Result<Comparison, PluginError> or fn(&Exchange, &Config) -> …"
            }
            Kind::RowMap => {
                "fn(&SourceRow) -> Result<Vec<RowMutation>, PluginError> or fn(&SourceRow, &Config) -> …"
            }
        }
    }
}

/// Marks the plugin's transform function. See `switchyard_sdk::transform`.
#[proc_macro_attribute]
pub fn transform(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Transform, attr, item)
}

/// Marks the plugin's check function. See `switchyard_sdk::check`.
#[proc_macro_attribute]
pub fn check(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Check, attr, item)
}

/// Marks the plugin's route function. See `switchyard_sdk::route`.
#[proc_macro_attribute]
pub fn route(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::Route, attr, item)
}

/// Marks the plugin's response-check function. See
/// `switchyard_sdk::response_check`.
#[proc_macro_attribute]
pub fn response_check(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::ResponseCheck, attr, item)
}

/// Marks the plugin's row-map function. See `switchyard_sdk::row_map`.
#[proc_macro_attribute]
pub fn row_map(attr: TokenStream, item: TokenStream) -> TokenStream {
    expand(Kind::RowMap, attr, item)
}

fn expand(kind: Kind, attr: TokenStream, item: TokenStream) -> TokenStream {
    let func = parse_macro_input!(item as ItemFn);
    let init = match parse_init(kind, attr.into()) {
        Ok(init) => init,
        Err(e) => return e.to_compile_error().into(),
    };
    match check_signature(kind, &func) {
        Ok(shape) => {
            let glue = glue(kind, &func, shape, init.as_ref());
            quote!(#func #glue).into()
        }
        Err(e) => {
            let e = e.to_compile_error();
            quote!(#func #e).into()
        }
    }
}

/// Parses the optional `init = path` argument.
fn parse_init(kind: Kind, attr: TokenStream2) -> syn::Result<Option<Path>> {
    if attr.is_empty() {
        return Ok(None);
    }
    let nv: syn::MetaNameValue = syn::parse2(attr.clone()).map_err(|_| {
        syn::Error::new_spanned(
            &attr,
            format!(
                "`#[{}]` takes no arguments or `init = function`",
                kind.attribute()
            ),
        )
    })?;
    if !nv.path.is_ident("init") {
        return Err(syn::Error::new_spanned(
            &nv.path,
            format!(
                "unknown argument of `#[{}]`; expected `init = function`",
                kind.attribute()
            ),
        ));
    }
    match nv.value {
        syn::Expr::Path(p) => Ok(Some(p.path)),
        other => Err(syn::Error::new_spanned(
            other,
            "`init` takes the name of a function `fn(&Config) -> Result<(), PluginError>`",
        )),
    }
}

/// The form of a plugin function, as its arguments show it.
#[derive(Clone, Copy)]
struct Shape {
    /// It takes `&Config` after its input.
    takes_config: bool,
    /// A transform that writes into `&mut Rows` (its last argument) rather
    /// than returning mutations.
    writes: bool,
}

/// Checks the shape of the function and tells its form.
fn check_signature(kind: Kind, func: &ItemFn) -> syn::Result<Shape> {
    let sig = &func.sig;
    let wrong = |span: &dyn quote::ToTokens, what: &str| {
        syn::Error::new_spanned(
            span,
            format!(
                "`#[{}]` {what}; expected {}",
                kind.attribute(),
                kind.expected_signature()
            ),
        )
    };
    if let Some(a) = &sig.asyncness {
        return Err(wrong(a, "cannot be used on an async function"));
    }
    if !sig.generics.params.is_empty() {
        return Err(wrong(&sig.generics, "cannot be used on a generic function"));
    }
    if let ReturnType::Default = sig.output {
        return Err(wrong(
            &sig.ident,
            "needs a function that returns a `Result`",
        ));
    }
    let mut mutable = Vec::new();
    for arg in &sig.inputs {
        let FnArg::Typed(pat) = arg else {
            return Err(wrong(arg, "cannot be used on a method"));
        };
        let syn::Type::Reference(r) = &*pat.ty else {
            return Err(wrong(&pat.ty, "takes its arguments by reference"));
        };
        mutable.push((arg, r.mutability.is_some()));
    }
    let writes = matches!(kind, Kind::Transform) && mutable.last().is_some_and(|(_, m)| *m);
    let inputs = mutable.len() - usize::from(writes);
    if let Some((arg, _)) = mutable[..inputs].iter().find(|(_, m)| *m) {
        return Err(wrong(
            *arg,
            "takes its inputs by `&` and, in the fast form, its output last, as `&mut Rows`",
        ));
    }
    if inputs == 3 && matches!(kind, Kind::Transform) {
        return Err(wrong(
            mutable[2].0,
            "takes its output last by `&mut` (`&mut Rows`), not by `&`",
        ));
    }
    let shape = match inputs {
        0 => return Err(wrong(&sig.ident, "takes its input first")),
        1 | 2 => Shape {
            takes_config: inputs == 2,
            writes,
        },
        _ => return Err(wrong(mutable[2].0, "takes one or two inputs")),
    };
    if writes {
        fast_form(sig, &wrong)?;
    }
    Ok(shape)
}

/// The fast form of a transform reads `&EventView` and returns
/// `Result<(), PluginError>`: said here, on the offending tokens, rather
/// than by a type mismatch on the function's name.
fn fast_form(
    sig: &syn::Signature,
    wrong: &dyn Fn(&dyn quote::ToTokens, &str) -> syn::Error,
) -> syn::Result<()> {
    let last_ident = |ty: &syn::Type| match ty {
        syn::Type::Path(p) => p.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    };
    if let Some(FnArg::Typed(first)) = sig.inputs.first()
        && let syn::Type::Reference(r) = &*first.ty
        && last_ident(&r.elem).is_some_and(|name| name != "EventView")
    {
        return Err(wrong(
            &r.elem,
            "in the fast form (with `&mut Rows`) reads `&EventView`, not an owned `Event` (in tests, pass `event.view()`)",
        ));
    }
    if let ReturnType::Type(_, ty) = &sig.output
        && let syn::Type::Path(p) = &**ty
        && let Some(last) = p.path.segments.last()
        && let syn::PathArguments::AngleBracketed(args) = &last.arguments
        && let Some(syn::GenericArgument::Type(ok)) = args.args.first()
        && !matches!(ok, syn::Type::Tuple(t) if t.elems.is_empty())
    {
        return Err(wrong(
            ok,
            "in the fast form (with `&mut Rows`) writes its rows into `Rows` and returns `Result<(), PluginError>`",
        ));
    }
    Ok(())
}

/// The WebAssembly exports that call the user's function.
fn glue(kind: Kind, func: &ItemFn, shape: Shape, init: Option<&Path>) -> TokenStream2 {
    let name = &func.sig.ident;
    let call = match (shape.takes_config, shape.writes) {
        (true, true) => quote!(|input, config, rows| #name(input, config, rows)),
        (false, true) => quote!(|input, _config, rows| #name(input, rows)),
        (true, false) => quote!(|input, config| #name(input, config)),
        (false, false) => quote!(|input, _config| #name(input)),
    };
    // The init function's type is checked on every target, so that a wrong
    // signature shows up in native `cargo test` too.
    let init_check = init.map(|path| {
        quote! {
            const _: fn(&::switchyard_sdk::Config) -> ::core::result::Result<(), ::switchyard_sdk::PluginError> = #path;
        }
    });
    // The function's own type, on every target, so that `cargo test`
    // reports a wrong argument or return type as the wasm build would.
    let s = quote!(::switchyard_sdk);
    let (input, output) = match kind {
        Kind::Transform if shape.writes => (quote!(#s::EventView<'_>), quote!(())),
        Kind::Transform => (quote!(#s::Event), quote!(::std::vec::Vec<#s::RowMutation>)),
        Kind::Check => (quote!(#s::Pair), quote!(#s::Verdict)),
        Kind::Route => (quote!(#s::Request), quote!(#s::Decision)),
        Kind::ResponseCheck => (quote!(#s::Exchange), quote!(#s::Comparison)),
        Kind::RowMap => (
            quote!(#s::SourceRow),
            quote!(::std::vec::Vec<#s::RowMutation>),
        ),
    };
    let config = shape.takes_config.then(|| quote!(, &#s::Config));
    let rows = shape.writes.then(|| quote!(, &mut #s::Rows));
    let span = func.sig.ident.span();
    let type_check = quote::quote_spanned! {span=>
        const _: fn(&#input #config #rows) -> ::core::result::Result<#output, #s::PluginError> = #name;
    };
    // One plugin function per crate: a second one is refused here, by
    // name, rather than by the linker's duplicate symbols in the wasm build.
    let once = quote::format_ident!(
        "switchyard_sdk_allows_one_plugin_function_per_crate_and_this_crate_has_two"
    );
    let single = quote! {
        #[doc(hidden)]
        #[macro_export]
        macro_rules! #once { () => {}; }
    };
    let init = match init {
        Some(path) => quote!(::core::option::Option::Some(#path)),
        None => quote!(::core::option::Option::None),
    };
    let p = quote!(::switchyard_sdk::__private);
    let batch = if shape.writes {
        quote::format_ident!("transform_batch_into")
    } else {
        quote::format_ident!("transform_batch")
    };
    let body = match kind {
        Kind::Transform => quote! {
            impl #p::transform::exports::switchyard::plugin::transformer::Guest for __SwitchyardPlugin {
                fn init(config: ::std::vec::Vec<#p::wit::ConfigEntry>) -> ::core::result::Result<(), #p::wit::PluginError> {
                    #p::init(config, #init)
                }
                fn transform(events: #p::transform::exports::switchyard::plugin::transformer::EventBatch)
                    -> #p::transform::exports::switchyard::plugin::transformer::MutationBatch {
                    #p::#batch(events, #call)
                }
            }
            #p::transform::__export_transform!(__SwitchyardPlugin with_types_in #p::transform);
        },
        Kind::Check => quote! {
            impl #p::check::exports::switchyard::plugin::checker::Guest for __SwitchyardPlugin {
                fn init(config: ::std::vec::Vec<#p::wit::ConfigEntry>) -> ::core::result::Result<(), #p::wit::PluginError> {
                    #p::init(config, #init)
                }
                fn check(pairs: ::std::vec::Vec<#p::check::exports::switchyard::plugin::checker::Pair>)
                    -> ::std::vec::Vec<::core::result::Result<#p::check::exports::switchyard::plugin::checker::Verdict, #p::wit::PluginError>> {
                    #p::check_batch(pairs, #call)
                }
            }
            #p::check::__export_check!(__SwitchyardPlugin with_types_in #p::check);
        },
        Kind::Route => quote! {
            impl #p::route::exports::switchyard::plugin::router::Guest for __SwitchyardPlugin {
                fn init(config: ::std::vec::Vec<#p::wit::ConfigEntry>) -> ::core::result::Result<(), #p::wit::PluginError> {
                    #p::init(config, #init)
                }
                fn route(request: #p::route::exports::switchyard::plugin::router::Request)
                    -> ::core::result::Result<#p::route::exports::switchyard::plugin::router::Decision, #p::wit::PluginError> {
                    #p::route_one(request, #call)
                }
            }
            #p::route::__export_route!(__SwitchyardPlugin with_types_in #p::route);
        },
        Kind::ResponseCheck => quote! {
            impl #p::response_check::exports::switchyard::plugin::response_checker::Guest for __SwitchyardPlugin {
                fn init(config: ::std::vec::Vec<#p::wit::ConfigEntry>) -> ::core::result::Result<(), #p::wit::PluginError> {
                    #p::init(config, #init)
                }
                fn compare(exchange: #p::response_check::exports::switchyard::plugin::response_checker::Exchange)
                    -> ::core::result::Result<#p::response_check::exports::switchyard::plugin::response_checker::Comparison, #p::wit::PluginError> {
                    #p::compare_one(exchange, #call)
                }
            }
            #p::response_check::__export_response_check!(__SwitchyardPlugin with_types_in #p::response_check);
        },
        Kind::RowMap => quote! {
            impl #p::row_map::exports::switchyard::plugin::row_mapper::Guest for __SwitchyardPlugin {
                fn init(config: ::std::vec::Vec<#p::wit::ConfigEntry>) -> ::core::result::Result<(), #p::wit::PluginError> {
                    #p::init(config, #init)
                }
                fn map_rows(rows: ::std::vec::Vec<#p::row_map::exports::switchyard::plugin::row_mapper::SourceRow>)
                    -> ::std::vec::Vec<::core::result::Result<::std::vec::Vec<#p::wit::RowMutation>, #p::wit::PluginError>> {
                    #p::map_batch(rows, #call)
                }
            }
            #p::row_map::__export_row_map!(__SwitchyardPlugin with_types_in #p::row_map);
        },
    };
    quote! {
        #init_check
        #type_check
        #single
        #[cfg(target_family = "wasm")]
        const _: () = {
            struct __SwitchyardPlugin;
            #body
        };
    }
}
