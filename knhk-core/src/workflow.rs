//! Workflow specification identifiers.

use core::fmt;

/// Identifies a workflow specification: the key of the workflow store.
///
/// A thin, `Copy` wrapper over a UUID, 16 bytes on every target.
///
/// ```
/// use knhk_core::WorkflowSpecId;
/// use uuid::Uuid;
///
/// let id = WorkflowSpecId(Uuid::from_u128(0x0123_4567_89ab_cdef_0123_4567_89ab_cdef));
/// assert_eq!(id.to_string(), "01234567-89ab-cdef-0123-456789abcdef");
/// assert_eq!(WorkflowSpecId::from_bytes(*id.as_bytes()), id);
/// ```
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
#[repr(transparent)]
pub struct WorkflowSpecId(pub uuid::Uuid);

impl WorkflowSpecId {
    /// The id whose 16 bytes are `bytes`, in the UUID's big-endian byte order.
    pub const fn from_bytes(bytes: [u8; 16]) -> Self {
        WorkflowSpecId(uuid::Uuid::from_bytes(bytes))
    }

    /// The id's 16 bytes, in the UUID's big-endian byte order.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for WorkflowSpecId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WorkflowSpecId({})", self.0)
    }
}

impl fmt::Display for WorkflowSpecId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl From<uuid::Uuid> for WorkflowSpecId {
    fn from(id: uuid::Uuid) -> Self {
        WorkflowSpecId(id)
    }
}

#[cfg(feature = "defmt")]
impl defmt::Format for WorkflowSpecId {
    fn format(&self, f: defmt::Formatter<'_>) {
        // The UUID's bytes in hex: uuid has no defmt support of its own.
        defmt::write!(f, "WorkflowSpecId({=[u8]:02x})", self.as_bytes()[..]);
    }
}
