// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
import {Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {EIP712} from "@openzeppelin/contracts/utils/cryptography/EIP712.sol";
import {SignatureChecker} from "@openzeppelin/contracts/utils/cryptography/SignatureChecker.sol";

/// @title UsageLedger
/// @notice On-chain commitments of metered MCP usage. An authorised server commits each batch of
/// call records once: its id, its period, a Merkle root over the records and per-provider aggregate
/// lines encrypted to the provider, the operator and the auditor. No plaintext count is stored or
/// emitted; the `UsageCommitted` event carries the whole batch for indexers.
/// @dev The server commits directly (`commit`) or anyone relays its EIP-712 signature
/// (`commitSigned`, primary type `CommitUsageBatch`, domain "BackendShield UsageLedger" version 1).
/// A batch id is single-use per server, which also makes a signature single-use. The contract
/// stores only the batch's EIP-712 struct hash (`batchHashOf`), so a batch read back from the logs
/// can be checked against state with `hashBatch`. Periods are the server's clock, in Unix
/// milliseconds, and are not compared with block time.
/// The owner also binds each server to the providers it meters (`setServerProviders`), with caps
/// on the billable calls it may report for each: per batch and per pricing period. The lines are
/// encrypted, so the ledger cannot check a batch against its server's bindings; settlement off
/// chain does (`src/payout/admission.ts`): a provider's line counts only when the batch's server
/// was bound to that provider at the batch's commit, and only up to the caps then in force.
/// The operator (`operator`) is the account whose key registered in the eERC's Registrar receives
/// the operator copy of every line; it settles and pays. It is named apart from the owner, so the
/// owner can be an account without an eERC key (a multisig). It starts as the deployer; the owner
/// changes it (`setOperator`), for batches committed from then on.
/// Ownership moves in two steps (`transferOwnership`, then `acceptOwnership`) and cannot be
/// renounced: without an owner no server could be authorised or revoked.
contract UsageLedger is Ownable2Step, EIP712 {
    struct UsageBatch {
        address server;
        bytes32 batchId;
        uint64 periodStart;
        uint64 periodEnd;
        bytes32 merkleRoot;
        bytes encryptedLines;
    }

    bytes32 public constant USAGE_BATCH_TYPEHASH = keccak256(
        "UsageBatch(address server,bytes32 batchId,uint64 periodStart,uint64 periodEnd,bytes32 merkleRoot,bytes encryptedLines)"
    );
    bytes32 public constant COMMIT_USAGE_BATCH_TYPEHASH = keccak256(
        "CommitUsageBatch(UsageBatch batch,uint256 deadline)"
        "UsageBatch(address server,bytes32 batchId,uint64 periodStart,uint64 periodEnd,bytes32 merkleRoot,bytes encryptedLines)"
    );

    /// @notice A server's binding to one provider: whether its lines for the provider count, and
    /// the most billable calls they count per batch and per pricing period (type(uint64).max: no cap).
    struct ProviderBinding {
        bool bound;
        uint64 maxCallsPerBatch;
        uint64 maxCallsPerPeriod;
    }

    uint256 public constant MAX_BINDINGS_PER_CALL = 64;

    /// @notice The account whose registered eERC key receives the operator copy of every line.
    address public operator;

    mapping(address server => bool) public isAuthorisedServer;
    mapping(address server => mapping(bytes32 providerId => ProviderBinding)) public bindingOf;
    mapping(address server => mapping(bytes32 batchId => bytes32 batchHash)) public batchHashOf;

    event OperatorChanged(address indexed previousOperator, address indexed newOperator);
    event ServerAuthorisationChanged(address indexed server, bool authorised);
    event ServerProviderBound(
        address indexed server, bytes32 indexed providerId, bool bound, uint64 maxCallsPerBatch, uint64 maxCallsPerPeriod
    );
    event UsageCommitted(
        address indexed server,
        bytes32 indexed batchId,
        uint64 periodStart,
        uint64 periodEnd,
        bytes32 merkleRoot,
        bytes encryptedLines
    );

    error ZeroAddress();
    error UnauthorisedServer(address server);
    error NotBatchServer(address sender, address server);
    error BatchAlreadyCommitted(address server, bytes32 batchId);
    error InvalidPeriod(uint64 periodStart, uint64 periodEnd);
    error EmptyMerkleRoot();
    error EmptyLines();
    error SignatureExpired(uint256 deadline);
    error InvalidSignature();
    error RenounceOwnershipDisabled();
    error NoProviders();
    error TooManyProviders(uint256 count);
    error ZeroProviderId();
    error ZeroCap();
    error CapOnUnbound();

    constructor() Ownable(msg.sender) EIP712("BackendShield UsageLedger", "1") {
        operator = msg.sender;
        emit OperatorChanged(address(0), msg.sender);
    }

    /// @notice Names the account whose registered eERC key receives the operator copy of the lines
    /// of batches committed from now on; earlier batches stay encrypted to the previous operator.
    function setOperator(address newOperator) external onlyOwner {
        if (newOperator == address(0)) revert ZeroAddress();
        address previous = operator;
        operator = newOperator;
        emit OperatorChanged(previous, newOperator);
    }

    /// @notice Authorises (or revokes) a server key. Revoking keeps its committed batches.
    function setServer(address server, bool authorised) external onlyOwner {
        if (server == address(0)) revert ZeroAddress();
        isAuthorisedServer[server] = authorised;
        emit ServerAuthorisationChanged(server, authorised);
    }

    /// @notice Binds (or unbinds) `server` to each of `providerIds` (keccak256 of the namespace), with
    /// the same caps on the billable calls its lines may report for each provider: per batch and
    /// per pricing period, each > 0 (type(uint64).max for no cap). Unbinding takes caps 0. A later
    /// call for the same (server, provider) replaces the binding from its position on chain.
    function setServerProviders(
        address server,
        bytes32[] calldata providerIds,
        bool bound,
        uint64 maxCallsPerBatch,
        uint64 maxCallsPerPeriod
    ) external onlyOwner {
        if (server == address(0)) revert ZeroAddress();
        uint256 n = providerIds.length;
        if (n == 0) revert NoProviders();
        if (n > MAX_BINDINGS_PER_CALL) revert TooManyProviders(n);
        if (bound) {
            if (maxCallsPerBatch == 0 || maxCallsPerPeriod == 0) revert ZeroCap();
        } else if (maxCallsPerBatch != 0 || maxCallsPerPeriod != 0) {
            revert CapOnUnbound();
        }
        for (uint256 i = 0; i < n; ++i) {
            bytes32 providerId = providerIds[i];
            if (providerId == bytes32(0)) revert ZeroProviderId();
            bindingOf[server][providerId] = ProviderBinding(bound, maxCallsPerBatch, maxCallsPerPeriod);
            emit ServerProviderBound(server, providerId, bound, maxCallsPerBatch, maxCallsPerPeriod);
        }
    }

    /// @notice Always reverts: without an owner no server could be authorised or revoked.
    function renounceOwnership() public pure override {
        revert RenounceOwnershipDisabled();
    }

    /// @notice Commits a batch sent by its own server.
    function commit(UsageBatch calldata batch) external {
        if (msg.sender != batch.server) revert NotBatchServer(msg.sender, batch.server);
        _commit(batch, hashBatch(batch));
    }

    /// @notice Commits a batch relayed with its server's EIP-712 signature.
    function commitSigned(UsageBatch calldata batch, uint256 deadline, bytes calldata signature) external {
        if (block.timestamp > deadline) revert SignatureExpired(deadline);
        bytes32 batchHash = hashBatch(batch);
        bytes32 digest = _hashTypedDataV4(keccak256(abi.encode(COMMIT_USAGE_BATCH_TYPEHASH, batchHash, deadline)));
        if (!SignatureChecker.isValidSignatureNow(batch.server, digest, signature)) revert InvalidSignature();
        _commit(batch, batchHash);
    }

    function isCommitted(address server, bytes32 batchId) external view returns (bool) {
        return batchHashOf[server][batchId] != bytes32(0);
    }

    /// @notice EIP-712 struct hash of a batch: the value `batchHashOf` stores once it is committed.
    function hashBatch(UsageBatch calldata batch) public pure returns (bytes32) {
        return keccak256(
            abi.encode(
                USAGE_BATCH_TYPEHASH,
                batch.server,
                batch.batchId,
                batch.periodStart,
                batch.periodEnd,
                batch.merkleRoot,
                keccak256(batch.encryptedLines)
            )
        );
    }

    function _commit(UsageBatch calldata batch, bytes32 batchHash) private {
        address server = batch.server;
        if (!isAuthorisedServer[server]) revert UnauthorisedServer(server);
        if (batchHashOf[server][batch.batchId] != bytes32(0)) revert BatchAlreadyCommitted(server, batch.batchId);
        if (batch.periodStart > batch.periodEnd) revert InvalidPeriod(batch.periodStart, batch.periodEnd);
        if (batch.merkleRoot == bytes32(0)) revert EmptyMerkleRoot();
        if (batch.encryptedLines.length == 0) revert EmptyLines();

        batchHashOf[server][batch.batchId] = batchHash;
        emit UsageCommitted(
            server, batch.batchId, batch.periodStart, batch.periodEnd, batch.merkleRoot, batch.encryptedLines
        );
    }
}
