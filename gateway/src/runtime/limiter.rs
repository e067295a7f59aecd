//! The per-instance memory cap, as a typed trap: a plugin that grows its memory past the cap is
//! ended with an error that says so, instead of a generic allocation failure deep in its
//! allocator.

use wasmtime::ResourceLimiter;

/// Why an instance was ended by its memory cap.
#[derive(Debug, thiserror::Error)]
#[error("memory cap of {cap_mib} MiB reached (the plugin asked for {desired_mib:.1} MiB)")]
pub struct MemoryCapReached {
    pub cap_mib: usize,
    pub desired_mib: f64,
}

/// Caps linear memory and table growth of one instance.
#[derive(Debug, Clone, Copy)]
pub struct InstanceLimiter {
    memory_bytes: usize,
}

/// Table elements one instance may grow to (matches the pooling allocator's slot size).
const MAX_TABLE_ELEMENTS: usize = 20_000;

impl InstanceLimiter {
    pub fn new(memory_bytes: usize) -> Self {
        InstanceLimiter { memory_bytes }
    }
}

impl ResourceLimiter for InstanceLimiter {
    fn memory_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            return Err(wasmtime::Error::new(MemoryCapReached {
                cap_mib: self.memory_bytes >> 20,
                desired_mib: desired as f64 / (1024.0 * 1024.0),
            }));
        }
        Ok(true)
    }

    fn table_growing(&mut self, _current: usize, desired: usize, _maximum: Option<usize>) -> wasmtime::Result<bool> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }
}
