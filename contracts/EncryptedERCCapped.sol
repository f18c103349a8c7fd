// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

import {CreateEncryptedERCParams} from "./types/Types.sol";
import {EncryptedERC} from "./EncryptedERC.sol";

/// @title EncryptedERCCapped
/// @notice EncryptedERC with a cap on each balance's pending amount PCTs, as reported for a 2026
/// hardening of the audited eERC (at most 300, `PendingHistoryLimitReached`): a credit or deposit
/// that would push one more PCT onto a full queue reverts, until the owner's next spend drops the
/// PCTs its snapshot covers. Everything else is EncryptedERC's, interface included.
/// @dev Not the default deployment: the audited main has no cap, and here a spend drops its prefix
/// of the queue by binary search, so a long queue does not make spends costlier. The cap exists to
/// run the payout agent against a contract that has it (a provider whose queue was filled with
/// dust by someone else cannot be paid until it spends).
contract EncryptedERCCapped is EncryptedERC {
    /// @notice Pending amount PCTs a balance may hold; the reported hardening uses 300.
    uint256 public immutable MAX_PENDING_AMOUNT_PCTS;

    error PendingHistoryLimitReached();
    error InvalidPendingLimit();

    constructor(CreateEncryptedERCParams memory params, uint256 maxPendingAmountPCTs) EncryptedERC(params) {
        if (maxPendingAmountPCTs == 0) revert InvalidPendingLimit();
        MAX_PENDING_AMOUNT_PCTS = maxPendingAmountPCTs;
    }

    function _pushPCT(EncryptedBalance storage bal, uint256[7] memory pct, uint64 txIndex) internal override {
        if (bal.pctEnd - bal.pctStart >= MAX_PENDING_AMOUNT_PCTS) revert PendingHistoryLimitReached();
        super._pushPCT(bal, pct, txIndex);
    }
}
