//! Virtual machines: definitions, disks, ISO handling and the QEMU backend (typed command-line builder + QMP).
