//! The GPU half of examples/gpu-saxpy: two kernels in the fork's
//! `extern "gpu-kernel"` ABI, which lowers to PTX `.entry` functions on
//! nvptx64 and to `amdgpu_kernel` functions on amdgcn-amd-amdhsa.
//!
//! `ci/gpu-example` checks the PTX against the FileCheck lines below
//! (`PTX`, `SAXPY`, `AFFINE`: one FileCheck run per prefix, since the order
//! of the kernels in the module is LLVM's): each kernel is an `.entry`, and
//! its parameters have the layout the host program passes
//! (`host/src/main.rs` mirrors `Affine`). For amdgcn it checks the code
//! object (`gpu_saxpy_kernel.elf`) with llvm-readobj: each kernel and its
//! kernel descriptor (`<name>.kd`) exported, the GPU in the ELF header.

// PTX: .target sm_70
// PTX: .address_size 64

#![no_std]
#![feature(abi_gpu_kernel)]
#![cfg_attr(target_arch = "nvptx64", feature(stdarch_nvptx))]
// The amdgpu work-item ids are LLVM intrinsics: 1.85's `core` has no
// `core::arch::amdgpu` to wrap them.
#![cfg_attr(target_arch = "amdgpu", feature(link_llvm_intrinsics), allow(internal_features))]

#[cfg(target_arch = "nvptx64")]
use core::arch::nvptx;

/// This thread's index in the grid (x dimension only).
#[cfg(target_arch = "nvptx64")]
#[inline(always)]
fn global_index() -> usize {
    // SAFETY: reading PTX special registers has no preconditions. The
    // registers are never negative.
    unsafe { nvptx::_block_idx_x() as usize * nvptx::_block_dim_x() as usize + nvptx::_thread_idx_x() as usize }
}

/// The amdgpu work-item and workgroup ids, and `trap`.
#[cfg(target_arch = "amdgpu")]
mod amdgpu {
    extern "C" {
        #[link_name = "llvm.amdgcn.workitem.id.x"]
        pub fn workitem_id_x() -> u32;
        #[link_name = "llvm.amdgcn.workgroup.id.x"]
        pub fn workgroup_id_x() -> u32;
        #[link_name = "llvm.trap"]
        pub fn trap() -> !;
    }

    /// Work-items per workgroup: the launch size the host uses (`BLOCK` in
    /// host/src/main.rs). Reading it at run time means the HSA dispatch
    /// packet, in a constant address space Rust pointers cannot name yet.
    pub const WORKGROUP_SIZE: usize = 256;
}

/// This work-item's index in the grid (x dimension only).
#[cfg(target_arch = "amdgpu")]
#[inline(always)]
fn global_index() -> usize {
    // SAFETY: reading the work-item and workgroup ids has no preconditions.
    unsafe { amdgpu::workgroup_id_x() as usize * amdgpu::WORKGROUP_SIZE + amdgpu::workitem_id_x() as usize }
}

// SAXPY-LABEL: .visible .entry saxpy(
// SAXPY-NEXT: .param .u32 saxpy_param_0,
// SAXPY-NEXT: .param .f32 saxpy_param_1,
// SAXPY-NEXT: .param .u64 {{.*}}saxpy_param_2,
// SAXPY-NEXT: .param .u64 {{.*}}saxpy_param_3
// SAXPY-NEXT: )
// SAXPY: ld.param.f32
// SAXPY: {{fma.rn.f32|mul.rn.f32}}
// SAXPY: st.global.f32
/// `y[i] = a * x[i] + y[i]` for `i < n`, one element per thread.
///
/// # Safety
///
/// `x` and `y` point to at least `n` floats in device memory.
#[no_mangle]
pub unsafe extern "gpu-kernel" fn saxpy(n: u32, a: f32, x: *const f32, y: *mut f32) {
    let i = global_index();
    if i < n as usize {
        *y.add(i) = a * *x.add(i) + *y.add(i);
    }
}

/// A kernel's argument passed by value: the parameter is the struct's bytes,
/// with its C layout (24 bytes, aligned to 8, 4 of them padding at the end).
#[repr(C)]
pub struct Affine {
    pub data: *mut f32,
    pub n: u32,
    pub scale: f32,
    pub offset: f32,
}

// AFFINE-LABEL: .visible .entry affine(
// AFFINE-NEXT: .param .align 8 .b8 affine_param_0[24]
// AFFINE-NEXT: )
/// `data[i] = data[i] * scale + offset` for `i < n`, one element per thread.
///
/// # Safety
///
/// `p.data` points to at least `p.n` floats in device memory.
#[no_mangle]
pub unsafe extern "gpu-kernel" fn affine(p: Affine) {
    let i = global_index();
    if i < p.n as usize {
        let v = p.data.add(i);
        *v = *v * p.scale + p.offset;
    }
}

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    // Nothing in the kernels can panic; were one to, the kernel traps and
    // the launch fails on the host.
    // SAFETY: `trap` only ends the kernel.
    #[cfg(target_arch = "nvptx64")]
    unsafe {
        nvptx::trap()
    }
    // SAFETY: as above.
    #[cfg(target_arch = "amdgpu")]
    unsafe {
        amdgpu::trap()
    }
}
