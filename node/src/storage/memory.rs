//! The database of an `--ephemeral` node: redb over memory held in fixed-size chunks.
//!
//! redb's own `InMemoryBackend` is one `Vec` that grows by doubling: each growth copies the
//! whole database (old and new copies resident at once, the node's peak memory) and zeroes the
//! new half by writing it. Chunks never move, and each is allocated zeroed by the allocator
//! (fresh pages for chunks this large), so memory grows with what redb writes and no further.

use std::io;
use std::sync::RwLock;

use redb::StorageBackend;

/// Bytes per chunk.
const CHUNK: usize = 1 << 20;

/// redb's storage in memory, one chunk at a time (see the module's docs).
#[derive(Debug, Default)]
pub(crate) struct ChunkedMemory {
    inner: RwLock<Chunks>,
}

#[derive(Debug, Default)]
struct Chunks {
    chunks: Vec<Box<[u8]>>,
    len: u64,
}

/// The runs of chunk memory that `len` bytes from `offset` cover in storage of `total` bytes:
/// (chunk, start, end) each.
fn spans(
    total: u64,
    offset: u64,
    len: usize,
) -> io::Result<impl Iterator<Item = (usize, usize, usize)>> {
    let end = offset
        .checked_add(len as u64)
        .filter(|end| *end <= total)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "index out of range"))?;
    let (mut at, end) = (offset as usize, end as usize);
    Ok(std::iter::from_fn(move || {
        (at < end).then(|| {
            let (chunk, start) = (at / CHUNK, at % CHUNK);
            let stop = (start + (end - at)).min(CHUNK);
            at += stop - start;
            (chunk, start, stop)
        })
    }))
}

impl ChunkedMemory {
    fn read_lock(&self) -> std::sync::RwLockReadGuard<'_, Chunks> {
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write_lock(&self) -> std::sync::RwLockWriteGuard<'_, Chunks> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }
}

impl StorageBackend for ChunkedMemory {
    fn len(&self) -> io::Result<u64> {
        Ok(self.read_lock().len)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let inner = self.read_lock();
        let mut done = 0;
        for (chunk, start, stop) in spans(inner.len, offset, out.len())? {
            out[done..done + stop - start].copy_from_slice(&inner.chunks[chunk][start..stop]);
            done += stop - start;
        }
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut inner = self.write_lock();
        let too_large = || io::Error::new(io::ErrorKind::InvalidInput, "length out of range");
        let bytes = usize::try_from(len).map_err(|_| too_large())?;
        let needed = bytes.div_ceil(CHUNK);
        if len < inner.len {
            // Bytes past the new end must read as zero if the length grows again.
            let old = inner.len as usize;
            inner.chunks.truncate(needed);
            if let Some(last) = inner.chunks.last_mut() {
                let from = bytes - (needed - 1) * CHUNK;
                let to = (old - (needed - 1) * CHUNK).min(CHUNK);
                last[from..to].fill(0);
            }
        }
        while inner.chunks.len() < needed {
            inner.chunks.push(vec![0u8; CHUNK].into_boxed_slice());
        }
        inner.len = len;
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut inner = self.write_lock();
        let mut done = 0;
        for (chunk, start, stop) in spans(inner.len, offset, data.len())? {
            inner.chunks[chunk][start..stop].copy_from_slice(&data[done..done + stop - start]);
            done += stop - start;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_was_written_across_chunks_and_zeroes_what_a_shrink_cut() {
        let m = ChunkedMemory::default();
        m.set_len(3 * CHUNK as u64).unwrap();
        let data: Vec<u8> = (0..CHUNK + 10).map(|i| (i % 251) as u8 + 1).collect();
        let at = CHUNK as u64 - 5;
        m.write(at, &data).unwrap();
        let mut out = vec![0; data.len()];
        m.read(at, &mut out).unwrap();
        assert_eq!(out, data);
        // Past the end is an error, not a panic.
        assert!(m.read(3 * CHUNK as u64 - 1, &mut [0; 2]).is_err());
        assert!(m.write(u64::MAX, &[1]).is_err());
        // Shrink into the written run, grow back: the cut bytes read as zero.
        m.set_len(CHUNK as u64).unwrap();
        m.set_len(2 * CHUNK as u64 + 1).unwrap();
        let mut out = vec![9; 10];
        m.read(CHUNK as u64 - 5, &mut out).unwrap();
        assert_eq!(&out[..5], &data[..5]);
        assert_eq!(&out[5..], &[0; 5]);
        assert_eq!(m.len().unwrap(), 2 * CHUNK as u64 + 1);
    }
}
