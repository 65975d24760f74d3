//! Real datasets read from their official files (verified by hash), and the real digits
//! embedded in the binary.

pub mod cifar;
pub mod digits;
pub mod idx;
pub mod mnist;
pub mod svhn;
pub mod tiny_imagenet;
