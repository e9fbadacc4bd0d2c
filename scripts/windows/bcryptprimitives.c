/*
 * A stand-in for Windows' bcryptprimitives.dll, for running our .exe files under wine
 * 8.0 (Debian 12), which lacks the DLL. Rust's std (1.78 and later) may import
 * ProcessPrng from it to seed HashMap keys; on Windows 10 and later the real DLL is
 * always there and this file is not used. Built and installed by smoke.sh only.
 */
#include <windows.h>
#include <bcrypt.h>

/* Fills data with len random bytes. Like the real one, never fails in practice;
 * BCryptGenRandom takes a ULONG length, so large requests go in chunks. */
BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T len)
{
    while (len > 0) {
        ULONG chunk = len > 0x40000000 ? 0x40000000 : (ULONG)len;
        if (!BCRYPT_SUCCESS(BCryptGenRandom(NULL, data, chunk,
                                            BCRYPT_USE_SYSTEM_PREFERRED_RNG)))
            return FALSE;
        data += chunk;
        len -= chunk;
    }
    return TRUE;
}
