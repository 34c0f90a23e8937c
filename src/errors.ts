// Errors a user can cause (a bad image, a bad flag, a bad spec). The CLI prints their message
// without a stack trace; everything else is a bug and keeps its stack.
export class UserError extends Error {
  override name = "UserError";
}

// An image (ELF, kernel, initrd) that cannot be loaded.
export class ImageError extends UserError {
  override name = "ImageError";
}
