//! The CPU half of examples/gpu-saxpy: loads the kernels' PTX through the
//! CUDA driver API, runs `saxpy` over 1,048,576 floats and `affine` (a
//! `#[repr(C)]` struct argument) over 1,000,003, and checks every result
//! against the CPU.
//!
//! `libcuda.so.1` is opened at run time, so the program builds without CUDA.
//! Without it, or without a device, it prints "no GPU: skipped" and exits 0.
//!
//! Usage: `gpu-saxpy-host [KERNEL.ptx]` (default: the kernel crate's release
//! build, `../kernel/target/nvptx64-nvidia-cuda/release/gpu_saxpy_kernel.ptx`).

use std::ffi::{c_char, c_int, c_uint, c_void, CStr, CString};
use std::path::PathBuf;
use std::process::ExitCode;
use std::ptr;

const DEFAULT_PTX: &str =
    concat!(env!("CARGO_MANIFEST_DIR"), "/../kernel/target/nvptx64-nvidia-cuda/release/gpu_saxpy_kernel.ptx");

/// The CUDA driver API's handles and status code (`cuda.h`).
type CuResult = c_int;
type CuDevice = c_int;
type CuContext = *mut c_void;
type CuModule = *mut c_void;
type CuFunction = *mut c_void;
type CuStream = *mut c_void;
type CuDevicePtr = u64;

const CUDA_SUCCESS: CuResult = 0;
/// The installed libcuda is the stub the toolkit ships for linking: no driver.
const CUDA_ERROR_STUB_LIBRARY: CuResult = 34;
const CUDA_ERROR_NO_DEVICE: CuResult = 100;
const CU_JIT_ERROR_LOG_BUFFER: c_int = 5;
const CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES: c_int = 6;

/// Declares the driver functions used here and loads them with `dlsym`.
macro_rules! driver_api {
    ($($field:ident: $symbol:literal fn($($arg:ty),*);)*) => {
        #[allow(non_snake_case)]
        struct Driver {
            $($field: unsafe extern "C" fn($($arg),*) -> CuResult,)*
        }

        impl Driver {
            /// # Safety
            ///
            /// `lib` is a handle of libcuda, whose symbols have the types above.
            unsafe fn load(lib: *mut c_void) -> Result<Driver, String> {
                Ok(Driver {
                    $($field: {
                        let symbol = libc::dlsym(lib, concat!($symbol, "\0").as_ptr().cast());
                        if symbol.is_null() {
                            return Err(format!("libcuda.so.1 has no {}", $symbol));
                        }
                        std::mem::transmute::<*mut c_void, unsafe extern "C" fn($($arg),*) -> CuResult>(symbol)
                    },)*
                })
            }
        }
    };
}

driver_api! {
    init: "cuInit" fn(c_uint);
    get_error_name: "cuGetErrorName" fn(CuResult, *mut *const c_char);
    device_get_count: "cuDeviceGetCount" fn(*mut c_int);
    device_get: "cuDeviceGet" fn(*mut CuDevice, c_int);
    device_get_name: "cuDeviceGetName" fn(*mut c_char, c_int, CuDevice);
    primary_ctx_retain: "cuDevicePrimaryCtxRetain" fn(*mut CuContext, CuDevice);
    primary_ctx_release: "cuDevicePrimaryCtxRelease_v2" fn(CuDevice);
    ctx_set_current: "cuCtxSetCurrent" fn(CuContext);
    ctx_synchronize: "cuCtxSynchronize" fn();
    module_load_data_ex: "cuModuleLoadDataEx" fn(*mut CuModule, *const c_void, c_uint, *mut c_int, *mut *mut c_void);
    module_get_function: "cuModuleGetFunction" fn(*mut CuFunction, CuModule, *const c_char);
    module_unload: "cuModuleUnload" fn(CuModule);
    mem_alloc: "cuMemAlloc_v2" fn(*mut CuDevicePtr, usize);
    mem_free: "cuMemFree_v2" fn(CuDevicePtr);
    memcpy_htod: "cuMemcpyHtoD_v2" fn(CuDevicePtr, *const c_void, usize);
    memcpy_dtoh: "cuMemcpyDtoH_v2" fn(*mut c_void, CuDevicePtr, usize);
    launch_kernel: "cuLaunchKernel" fn(
        CuFunction, c_uint, c_uint, c_uint, c_uint, c_uint, c_uint, c_uint, CuStream,
        *mut *mut c_void, *mut *mut c_void
    );
}

impl Driver {
    /// `Ok` for `CUDA_SUCCESS`, else an error naming the call and the status.
    fn check(&self, call: &str, status: CuResult) -> Result<(), String> {
        if status == CUDA_SUCCESS {
            return Ok(());
        }
        let mut name: *const c_char = ptr::null();
        // SAFETY: cuGetErrorName writes a pointer to a static string, or fails.
        let known = unsafe { (self.get_error_name)(status, &mut name) } == CUDA_SUCCESS && !name.is_null();
        // SAFETY: a name cuGetErrorName returned is a NUL-terminated static string.
        let name = if known { unsafe { CStr::from_ptr(name) }.to_string_lossy().into_owned() } else { "?".into() };
        Err(format!("{call}: {name} ({status})"))
    }

    fn alloc(&self, bytes: usize) -> Result<CuDevicePtr, String> {
        let mut dptr = 0;
        // SAFETY: writes one device pointer.
        self.check("cuMemAlloc", unsafe { (self.mem_alloc)(&mut dptr, bytes) })?;
        Ok(dptr)
    }

    fn upload(&self, data: &[f32]) -> Result<CuDevicePtr, String> {
        let dptr = self.alloc(size_of_val(data))?;
        // SAFETY: `dptr` holds as many bytes as `data`.
        self.check("cuMemcpyHtoD", unsafe { (self.memcpy_htod)(dptr, data.as_ptr().cast(), size_of_val(data)) })?;
        Ok(dptr)
    }

    fn download(&self, dptr: CuDevicePtr, out: &mut [f32]) -> Result<(), String> {
        // SAFETY: `dptr` holds at least as many bytes as `out`.
        self.check("cuMemcpyDtoH", unsafe { (self.memcpy_dtoh)(out.as_mut_ptr().cast(), dptr, size_of_val(out)) })
    }

    /// Launches `kernel` on a 1-D grid covering `n` threads and waits for it.
    fn launch(&self, kernel: CuFunction, n: usize, params: &mut [*mut c_void]) -> Result<(), String> {
        const BLOCK: usize = 256;
        let grid = n.div_ceil(BLOCK) as c_uint;
        // SAFETY: `params` holds one pointer per kernel parameter, each to a
        // value of the parameter's type and layout.
        let status = unsafe {
            (self.launch_kernel)(
                kernel,
                grid,
                1,
                1,
                BLOCK as c_uint,
                1,
                1,
                0,
                ptr::null_mut(),
                params.as_mut_ptr(),
                ptr::null_mut(),
            )
        };
        self.check("cuLaunchKernel", status)?;
        // SAFETY: no arguments.
        self.check("cuCtxSynchronize", unsafe { (self.ctx_synchronize)() })
    }
}

/// The kernel's `Affine`, field for field: the launch passes its bytes.
#[repr(C)]
struct Affine {
    data: CuDevicePtr,
    n: u32,
    scale: f32,
    offset: f32,
}

// The kernel's parameter is `.param .align 8 .b8 affine_param_0[24]`.
const _: () = assert!(size_of::<Affine>() == 24 && align_of::<Affine>() == 8);

enum Outcome {
    Ran,
    Skipped(String),
}

fn main() -> ExitCode {
    let ptx = std::env::args_os().nth(1).map_or_else(|| PathBuf::from(DEFAULT_PTX), PathBuf::from);
    match run(&ptx) {
        Ok(Outcome::Ran) => ExitCode::SUCCESS,
        Ok(Outcome::Skipped(why)) => {
            println!("no GPU: skipped ({why})");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("gpu-saxpy: {err}");
            ExitCode::FAILURE
        }
    }
}

fn run(ptx_path: &PathBuf) -> Result<Outcome, String> {
    // SAFETY: dlopen with a constant name; dlerror's message is read at once.
    let lib = unsafe { libc::dlopen(c"libcuda.so.1".as_ptr(), libc::RTLD_NOW | libc::RTLD_LOCAL) };
    if lib.is_null() {
        // SAFETY: after a failed dlopen, dlerror returns a message or null.
        let message = unsafe { libc::dlerror() };
        let why = if message.is_null() {
            "cannot open libcuda.so.1".to_owned()
        } else {
            // SAFETY: a non-null dlerror result is a NUL-terminated string.
            unsafe { CStr::from_ptr(message) }.to_string_lossy().into_owned()
        };
        return Ok(Outcome::Skipped(why));
    }
    // SAFETY: `lib` is libcuda, whose functions have the declared types.
    let cu = unsafe { Driver::load(lib)? };

    // SAFETY: plain calls with out-pointers to locals.
    match unsafe { (cu.init)(0) } {
        CUDA_ERROR_NO_DEVICE | CUDA_ERROR_STUB_LIBRARY => {
            return Ok(Outcome::Skipped("cuInit: the CUDA driver finds no device".into()));
        }
        status => cu.check("cuInit", status)?,
    }
    let mut count = 0;
    cu.check("cuDeviceGetCount", unsafe { (cu.device_get_count)(&mut count) })?;
    if count == 0 {
        return Ok(Outcome::Skipped("cuDeviceGetCount: 0 devices".into()));
    }
    let mut device = 0;
    cu.check("cuDeviceGet", unsafe { (cu.device_get)(&mut device, 0) })?;
    let mut name = [0 as c_char; 256];
    cu.check("cuDeviceGetName", unsafe { (cu.device_get_name)(name.as_mut_ptr(), name.len() as c_int, device) })?;
    // SAFETY: cuDeviceGetName wrote a NUL-terminated name into the buffer.
    let name = unsafe { CStr::from_ptr(name.as_ptr()) }.to_string_lossy().into_owned();
    let mut context = ptr::null_mut();
    cu.check("cuDevicePrimaryCtxRetain", unsafe { (cu.primary_ctx_retain)(&mut context, device) })?;
    cu.check("cuCtxSetCurrent", unsafe { (cu.ctx_set_current)(context) })?;
    println!("device 0: {name}");

    let ptx = std::fs::read(ptx_path).map_err(|err| {
        format!(
            "{}: {err} (build the kernel first: `cargo +patchq build --release --target nvptx64-nvidia-cuda` in examples/gpu-saxpy/kernel)",
            ptx_path.display()
        )
    })?;
    let ptx = CString::new(ptx).map_err(|_| format!("{}: a NUL byte in PTX text", ptx_path.display()))?;
    let module = load_module(&cu, &ptx).map_err(|err| format!("{}: {err}", ptx_path.display()))?;
    println!("loaded {}", ptx_path.display());

    saxpy(&cu, module)?;
    affine(&cu, module)?;

    // SAFETY: the module and the context are no longer used.
    cu.check("cuModuleUnload", unsafe { (cu.module_unload)(module) })?;
    cu.check("cuDevicePrimaryCtxRelease", unsafe { (cu.primary_ctx_release)(device) })?;
    println!("gpu-saxpy: ok on {name}");
    Ok(Outcome::Ran)
}

/// JIT-compiles the PTX for the device; the JIT's error log joins the error.
fn load_module(cu: &Driver, ptx: &CStr) -> Result<CuModule, String> {
    let mut log = vec![0 as c_char; 16 * 1024];
    let mut options = [CU_JIT_ERROR_LOG_BUFFER, CU_JIT_ERROR_LOG_BUFFER_SIZE_BYTES];
    // The size option's value is the number itself, in the pointer's place.
    let mut values = [log.as_mut_ptr().cast::<c_void>(), log.len() as *mut c_void];
    let mut module = ptr::null_mut();
    // SAFETY: `options` and `values` pair up; the log buffer outlives the call.
    let status = unsafe {
        (cu.module_load_data_ex)(
            &mut module,
            ptx.as_ptr().cast(),
            options.len() as c_uint,
            options.as_mut_ptr(),
            values.as_mut_ptr(),
        )
    };
    cu.check("cuModuleLoadDataEx", status).map_err(|err| {
        // SAFETY: the JIT NUL-terminates its log within the buffer.
        let log = unsafe { CStr::from_ptr(log.as_ptr()) }.to_string_lossy().into_owned();
        if log.is_empty() {
            err
        } else {
            format!("{err}\n{log}")
        }
    })?;
    Ok(module)
}

fn function(cu: &Driver, module: CuModule, name: &CStr) -> Result<CuFunction, String> {
    let mut function = ptr::null_mut();
    // SAFETY: writes one function handle.
    let status = unsafe { (cu.module_get_function)(&mut function, module, name.as_ptr()) };
    cu.check(&format!("cuModuleGetFunction({})", name.to_string_lossy()), status)?;
    Ok(function)
}

/// Whether the GPU's `a * b + c` is the CPU's, rounded once (a fused
/// multiply-add, which the NVPTX backend forms by default) or twice.
fn same_as_cpu(gpu: f32, a: f32, b: f32, c: f32) -> bool {
    gpu == a.mul_add(b, c) || gpu == a * b + c
}

/// The index and values of the first mismatch, if any.
fn first_mismatch(gpu: &[f32], expected: impl Fn(usize, f32) -> bool) -> Option<(usize, f32)> {
    gpu.iter().enumerate().find(|&(i, &g)| !expected(i, g)).map(|(i, &g)| (i, g))
}

fn saxpy(cu: &Driver, module: CuModule) -> Result<(), String> {
    const N: usize = 1 << 20;
    let a = 2.5f32;
    let x: Vec<f32> = (0..N).map(|i| (i % 1000) as f32 * 0.25).collect();
    let y: Vec<f32> = (0..N).map(|i| 1.0 + (i % 7) as f32).collect();
    let kernel = function(cu, module, c"saxpy")?;
    let dx = cu.upload(&x)?;
    let dy = cu.upload(&y)?;
    let mut n = N as u32;
    let mut a_param = a;
    let (mut dx_param, mut dy_param) = (dx, dy);
    let mut params: [*mut c_void; 4] = [
        (&mut n as *mut u32).cast(),
        (&mut a_param as *mut f32).cast(),
        (&mut dx_param as *mut CuDevicePtr).cast(),
        (&mut dy_param as *mut CuDevicePtr).cast(),
    ];
    cu.launch(kernel, N, &mut params)?;
    let mut out = vec![0f32; N];
    cu.download(dy, &mut out)?;
    // SAFETY: the buffers are no longer used.
    unsafe {
        cu.check("cuMemFree", (cu.mem_free)(dx))?;
        cu.check("cuMemFree", (cu.mem_free)(dy))?;
    }
    if let Some((i, g)) = first_mismatch(&out, |i, g| same_as_cpu(g, a, x[i], y[i])) {
        return Err(format!("saxpy: y[{i}] = {g} on the GPU, {} on the CPU", a * x[i] + y[i]));
    }
    println!("saxpy: {N} floats, all equal to the CPU's");
    Ok(())
}

fn affine(cu: &Driver, module: CuModule) -> Result<(), String> {
    // Not a multiple of the block size: the last block's extra threads must
    // leave the sentinels past `N` alone.
    const N: usize = 1_000_003;
    const SENTINELS: usize = 13;
    let (scale, offset) = (0.5f32, -3.0f32);
    let data: Vec<f32> = (0..N + SENTINELS).map(|i| if i < N { i as f32 * 0.001 } else { -7.0 }).collect();
    let kernel = function(cu, module, c"affine")?;
    let ddata = cu.upload(&data)?;
    let mut p = Affine { data: ddata, n: N as u32, scale, offset };
    let mut params: [*mut c_void; 1] = [(&mut p as *mut Affine).cast()];
    cu.launch(kernel, N, &mut params)?;
    let mut out = vec![0f32; N + SENTINELS];
    cu.download(ddata, &mut out)?;
    // SAFETY: the buffer is no longer used.
    cu.check("cuMemFree", unsafe { (cu.mem_free)(ddata) })?;
    let expected = |i: usize, g: f32| if i < N { same_as_cpu(g, data[i], scale, offset) } else { g == -7.0 };
    if let Some((i, g)) = first_mismatch(&out, expected) {
        return Err(format!("affine: data[{i}] = {g} on the GPU (N = {N}, the struct argument read wrong?)"));
    }
    println!("affine: {N} floats through a #[repr(C)] struct argument, all equal to the CPU's; {SENTINELS} past the end untouched");
    Ok(())
}
