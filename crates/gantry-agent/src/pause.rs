//! The pause container's image. An awsvpc task's network namespace belongs to a container that does nothing but
//! exist (as the ECS agent's `amazon-ecs-pause`), so that the task's containers can come and go in it. No image can
//! be pulled for it, so the agent makes one: a root file system with a single static program that sleeps in
//! `pause(2)` forever, imported into the engine on first use. Pure functions, no I/O.

/// The image the agent imports and runs as every awsvpc task's pause container.
pub const PAUSE_IMAGE: &str = "gantry/pause:1";
/// The program's path inside the image.
pub const PAUSE_COMMAND: &str = "/pause";
/// The ECS container name label of pause containers, as the ECS agent names them.
pub const PAUSE_CONTAINER_NAME: &str = "~internal~ecs~pause";

/// A static x86-64 Linux executable of 129 bytes: an ELF header, one loadable segment, and
/// `loop { pause() }` (`mov eax, 34; syscall; jmp loop`). As PID 1 of its namespace it has no handler for SIGTERM,
/// so the kernel ignores it; the agent stops the pause container with SIGKILL.
fn pause_x86_64() -> Vec<u8> {
    const BASE: u64 = 0x40_0000;
    const HEADERS: u64 = 64 + 56;
    let code: [u8; 9] = [0xb8, 34, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xf7];
    let size = HEADERS + code.len() as u64;
    let mut elf = Vec::with_capacity(size as usize);
    // ELF header: 64-bit, little endian, version 1, System V ABI.
    elf.extend_from_slice(&[0x7f, b'E', b'L', b'F', 2, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    elf.extend_from_slice(&2u16.to_le_bytes()); // ET_EXEC
    elf.extend_from_slice(&0x3eu16.to_le_bytes()); // EM_X86_64
    elf.extend_from_slice(&1u32.to_le_bytes()); // EV_CURRENT
    elf.extend_from_slice(&(BASE + HEADERS).to_le_bytes()); // entry point
    elf.extend_from_slice(&64u64.to_le_bytes()); // program headers right after this header
    elf.extend_from_slice(&0u64.to_le_bytes()); // no section headers
    elf.extend_from_slice(&0u32.to_le_bytes()); // flags
    elf.extend_from_slice(&64u16.to_le_bytes()); // header size
    elf.extend_from_slice(&56u16.to_le_bytes()); // program header size
    elf.extend_from_slice(&1u16.to_le_bytes()); // one program header
    elf.extend_from_slice(&[0; 6]); // no sections
                                    // Program header: PT_LOAD of the whole file, readable and executable.
    elf.extend_from_slice(&1u32.to_le_bytes());
    elf.extend_from_slice(&5u32.to_le_bytes());
    elf.extend_from_slice(&0u64.to_le_bytes());
    elf.extend_from_slice(&BASE.to_le_bytes());
    elf.extend_from_slice(&BASE.to_le_bytes());
    elf.extend_from_slice(&size.to_le_bytes());
    elf.extend_from_slice(&size.to_le_bytes());
    elf.extend_from_slice(&0x1000u64.to_le_bytes());
    elf.extend_from_slice(&code);
    elf
}

/// The pause program for this machine's architecture, when the agent has one.
pub fn pause_program() -> Option<Vec<u8>> {
    (std::env::consts::ARCH == "x86_64").then(pause_x86_64)
}

/// A tar archive (ustar) holding one executable file at `path`, as `docker import` reads it.
pub fn tar_with(path: &str, contents: &[u8]) -> Vec<u8> {
    let mut header = [0u8; 512];
    let name = path.trim_start_matches('/').as_bytes();
    header[..name.len().min(100)].copy_from_slice(&name[..name.len().min(100)]);
    let octal = |field: &mut [u8], value: u64| {
        let s = format!("{:0width$o}\0", value, width = field.len() - 1);
        field.copy_from_slice(s.as_bytes());
    };
    octal(&mut header[100..108], 0o755); // mode
    octal(&mut header[108..116], 0); // uid
    octal(&mut header[116..124], 0); // gid
    octal(&mut header[124..136], contents.len() as u64);
    octal(&mut header[136..148], 0); // mtime
    header[156] = b'0'; // a regular file
    header[257..263].copy_from_slice(b"ustar\0");
    header[263..265].copy_from_slice(b"00");
    // The checksum is computed with its own field as spaces.
    header[148..156].copy_from_slice(b"        ");
    let sum: u32 = header.iter().map(|b| *b as u32).sum();
    let s = format!("{sum:06o}\0 ");
    header[148..156].copy_from_slice(s.as_bytes());
    let mut tar = header.to_vec();
    tar.extend_from_slice(contents);
    tar.resize(tar.len().div_ceil(512) * 512, 0);
    // Two zero blocks end the archive.
    tar.extend_from_slice(&[0u8; 1024]);
    tar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_program_is_a_complete_elf_file() {
        let elf = pause_x86_64();
        assert_eq!(elf.len(), 129);
        assert_eq!(&elf[..4], b"\x7fELF");
        let entry = u64::from_le_bytes(elf[24..32].try_into().unwrap());
        assert_eq!(entry - 0x40_0000, 120);
        let filesz = u64::from_le_bytes(elf[64 + 32..64 + 40].try_into().unwrap());
        assert_eq!(filesz, elf.len() as u64);
        // The jump goes back to the start of the code.
        assert_eq!(elf.len() as i64 + (elf[128] as i8) as i64, 120);
    }

    #[test]
    fn the_archive_is_a_valid_ustar_file() {
        let tar = tar_with("/pause", b"abc");
        assert_eq!(tar.len(), 512 + 512 + 1024);
        assert_eq!(&tar[..5], b"pause");
        assert_eq!(&tar[124..136], b"00000000003\0");
        let mut header = tar[..512].to_vec();
        let stored =
            u32::from_str_radix(std::str::from_utf8(&header[148..154]).unwrap(), 8).unwrap();
        header[148..156].copy_from_slice(b"        ");
        assert_eq!(stored, header.iter().map(|b| *b as u32).sum::<u32>());
        assert_eq!(&tar[512..515], b"abc");
    }
}
