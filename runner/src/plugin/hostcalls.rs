//! WASI host calls that could outlast a plugin's deadline, replaced by
//! versions that cannot.
//!
//! - `wasi:io/poll` `poll` and `pollable.block` are what a guest's sleep,
//!   or a wait on a stream, end in. They wait here in short slices and stop
//!   at the call's deadline or on Ctrl-C, like guest code does.
//! - `wasi:filesystem/types` `descriptor.open-at` refuses anything but
//!   regular files and folders: opening a FIFO blocks until a writer comes,
//!   and reading a device may never end, neither of which a deadline could
//!   interrupt on a thread the host does not own.

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::filesystem::WasiFilesystemView;
use wasmtime_wasi::p2::bindings::sync::filesystem::types::{
    Descriptor, DescriptorFlags, DescriptorType, ErrorCode, HostDescriptor, OpenFlags, PathFlags,
};
use wasmtime_wasi::runtime::in_tokio;
use wasmtime_wasi_io::bindings::wasi::io::poll::{Host as PollHost, HostPollable};
use wasmtime_wasi_io::poll::DynPollable;

use super::sandbox::{HostState, WASI_VERSION};

/// Replaces the host calls above in `linker` (which must allow shadowing).
pub fn add_to_linker(linker: &mut Linker<HostState>) -> wasmtime::Result<()> {
    let mut poll = linker.instance(&format!("wasi:io/poll@{WASI_VERSION}"))?;
    poll.func_wrap(
        "poll",
        |mut store: StoreContextMut<'_, HostState>,
         (list,): (Vec<Resource<DynPollable>>,)|
         -> wasmtime::Result<(Vec<u32>,)> {
            let reps: Vec<u32> = list.iter().map(Resource::rep).collect();
            loop {
                let slice = store.data().clock.slice()?;
                let borrowed = reps.iter().map(|r| Resource::new_borrow(*r)).collect();
                let table = store.data_mut().table();
                let waited =
                    in_tokio(async { tokio::time::timeout(slice, table.poll(borrowed)).await });
                if let Ok(ready) = waited {
                    return ready.map(|r| (r,));
                }
            }
        },
    )?;
    poll.func_wrap(
        "[method]pollable.block",
        |mut store: StoreContextMut<'_, HostState>,
         (pollable,): (Resource<DynPollable>,)|
         -> wasmtime::Result<()> {
            let rep = pollable.rep();
            loop {
                let slice = store.data().clock.slice()?;
                let table = store.data_mut().table();
                let waited = in_tokio(async {
                    tokio::time::timeout(slice, table.block(Resource::new_borrow(rep))).await
                });
                if let Ok(done) = waited {
                    return done;
                }
            }
        },
    )?;

    let mut fs = linker.instance(&format!("wasi:filesystem/types@{WASI_VERSION}"))?;
    fs.func_wrap(
        "[method]descriptor.open-at",
        |mut store: StoreContextMut<'_, HostState>,
         (dir, path_flags, path, open_flags, flags): (
            Resource<Descriptor>,
            PathFlags,
            String,
            OpenFlags,
            DescriptorFlags,
        )|
         -> wasmtime::Result<(Result<Resource<Descriptor>, ErrorCode>,)> {
            let mut fs = store.data_mut().filesystem();
            let found = HostDescriptor::stat_at(
                &mut fs,
                Resource::new_borrow(dir.rep()),
                path_flags,
                path.clone(),
            );
            if let Ok(stat) = found
                && !matches!(
                    stat.type_,
                    DescriptorType::RegularFile
                        | DescriptorType::Directory
                        | DescriptorType::SymbolicLink
                )
            {
                return Ok((Err(ErrorCode::Access),));
            }
            match HostDescriptor::open_at(&mut fs, dir, path_flags, path, open_flags, flags) {
                Ok(opened) => Ok((Ok(opened),)),
                Err(e) => Ok((Err(e.downcast()?.into()),)),
            }
        },
    )?;
    Ok(())
}
