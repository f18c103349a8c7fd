// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

import {Ownable, Ownable2Step} from "@openzeppelin/contracts/access/Ownable2Step.sol";
import {ReentrancyGuardTransient} from "@openzeppelin/contracts/utils/ReentrancyGuardTransient.sol";
import {IERC20} from "@openzeppelin/contracts/token/ERC20/IERC20.sol";
import {IERC20Metadata} from "@openzeppelin/contracts/token/ERC20/extensions/IERC20Metadata.sol";
import {SafeERC20} from "@openzeppelin/contracts/token/ERC20/utils/SafeERC20.sol";

import {
    Point,
    EGCT,
    AmountPCT,
    Metadata,
    CreateEncryptedERCParams,
    MintProof,
    TransferProof,
    WithdrawProof,
    BurnProof
} from "./types/Types.sol";
import {Registrar} from "./Registrar.sol";
import {IMintVerifier} from "./interfaces/IMintVerifier.sol";
import {ITransferVerifier} from "./interfaces/ITransferVerifier.sol";
import {IWithdrawVerifier} from "./interfaces/IWithdrawVerifier.sol";
import {IBurnVerifier} from "./interfaces/IBurnVerifier.sol";
import {BabyJubJub} from "./libraries/BabyJubJub.sol";

/// @title EncryptedERC
/// @notice Encrypted ERC-20 (eERC). Balances are ElGamal ciphertexts under each user's registered
/// BabyJubJub key; amounts move with Groth16 proofs and are readable by the auditor through PCTs.
/// @dev Converter mode wraps ERC-20s (tokenIds from 1, assigned on a token's first deposit);
/// standalone mode has a single token (tokenId 0) created by privateMint.
///
/// Interface and balance model are those of the audited eERC (Ava Labs, main from July 2025), so
/// the same indexer, SDK and payout agent run on either:
/// - a credit (transfer in, mint) adds its EGCT (replacing a never-credited all-zero one), records
///   the new EGCT as a snapshot at the current nonce and appends its amount PCT, both with index
///   transactionIndex, then transactionIndex += 1;
/// - a deposit adds Enc(value, 1, PK) = (Base8, PK + value·Base8), appends its PCT with index
///   transactionIndex, records the snapshot with index transactionIndex + 1, transactionIndex += 2;
/// - a spend proves against a snapshot valid at the current nonce (index s), subtracts its EGCT
///   (the sender VTT; Enc(value, 1, PK) for a withdrawal) from the current one, drops the amount
///   PCTs with index <= s, stores the caller's balancePCT, nonce += 1, and records the result as
///   the one valid snapshot with index transactionIndex, then transactionIndex += 1.
/// One observable difference: pending amount PCTs keep their order here (a spend drops a prefix
/// found by binary search, so its cost does not grow with the queue); the audited code drops them
/// by swap-and-pop. Readers compare them as a set of (index, pct).
contract EncryptedERC is Ownable2Step, ReentrancyGuardTransient {
    using SafeERC20 for IERC20;

    struct EncryptedBalance {
        EGCT eGCT;
        uint64 nonce;
        uint64 transactionIndex;
        // Live amount PCTs are pcts[pctStart .. pctEnd); positions restart at 0 once all are dropped.
        uint64 pctStart;
        uint64 pctEnd;
        uint256[7] balancePCT;
        mapping(uint256 position => AmountPCT) pcts;
        // snapshot key => transaction index at which it was recorded, plus one.
        mapping(bytes32 snapshot => uint256) snapshots;
    }

    Registrar public immutable registrar;
    IMintVerifier public immutable mintVerifier;
    IWithdrawVerifier public immutable withdrawVerifier;
    ITransferVerifier public immutable transferVerifier;
    IBurnVerifier public immutable burnVerifier;
    bool public immutable isConverter;
    uint8 public immutable decimals;
    /// @dev Set in standalone mode only, as in the audited contract.
    string public name;
    string public symbol;

    address public auditor;
    Point public auditorPublicKey;

    uint256 public nextTokenId = 1;
    mapping(address tokenAddress => uint256 tokenId) public tokenIds;
    mapping(uint256 tokenId => address tokenAddress) public tokenAddresses;
    address[] public tokens;
    mapping(address tokenAddress => bool isBlacklisted) public blacklistedTokens;
    mapping(uint256 tokenId => uint8) private _tokenDecimals;

    mapping(uint256 mintNullifier => bool isUsed) public alreadyMinted;
    mapping(address user => mapping(uint256 tokenId => EncryptedBalance)) private _balances;

    event AuditorChanged(address indexed oldAuditor, address indexed newAuditor);
    /// @param amount token units requested; `amount - dust` was pulled and credited after scaling.
    event Deposit(address indexed user, uint256 amount, uint256 dust, uint256 tokenId);
    event PrivateTransfer(
        address indexed from, address indexed to, uint256[7] auditorPCT, address indexed auditorAddress
    );
    /// @param amount eERC units (the proven ValueToWithdraw).
    event Withdraw(
        address indexed user, uint256 amount, uint256 tokenId, uint256[7] auditorPCT, address indexed auditorAddress
    );
    event PrivateMint(address indexed user, uint256[7] auditorPCT, address indexed auditorAddress);
    event PrivateBurn(address indexed user, uint256[7] auditorPCT, address indexed auditorAddress);
    event PrivateMessage(address indexed from, address indexed to, Metadata metadata);

    error ZeroAddress();
    error ConverterOnly();
    error StandaloneOnly();
    error AuditorNotSet();
    error UserNotRegistered(address user);
    error UnknownToken(uint256 tokenId);
    error InvalidToken(address token);
    error TokenBlacklisted(address token);
    error TokenDecimalsUnavailable(address token);
    error UnsupportedTokenDecimals(address token, uint256 tokenDecimals);
    error ZeroAmount();
    error AmountTooLarge();
    error AmountNotRepresentable(uint256 value);
    error TransferAmountMismatch(uint256 expected, uint256 received);
    error InvalidSenderPublicKey();
    error InvalidReceiverPublicKey();
    error InvalidAuditorPublicKey();
    error InvalidPublicSignal();
    error InvalidBalanceSnapshot();
    error InvalidChainId();
    error InvalidNullifier();
    error NullifierAlreadyUsed();
    error InvalidProof();

    /// @dev Converter mode needs the withdraw verifier, standalone mode the mint and burn verifiers.
    constructor(CreateEncryptedERCParams memory params) Ownable(msg.sender) {
        bool missing = params.registrar == address(0) || params.transferVerifier == address(0)
            || (params.isConverter
                ? params.withdrawVerifier == address(0)
                : params.mintVerifier == address(0) || params.burnVerifier == address(0));
        if (missing) revert ZeroAddress();
        registrar = Registrar(params.registrar);
        isConverter = params.isConverter;
        if (!params.isConverter) {
            name = params.name;
            symbol = params.symbol;
        }
        decimals = params.decimals;
        mintVerifier = IMintVerifier(params.mintVerifier);
        withdrawVerifier = IWithdrawVerifier(params.withdrawVerifier);
        transferVerifier = ITransferVerifier(params.transferVerifier);
        burnVerifier = IBurnVerifier(params.burnVerifier);
    }

    // ---------------------------------------------------------------- admin

    /// @notice Makes a registered user the auditor; every later PCT must be encrypted to its key.
    function setAuditorPublicKey(address user) external onlyOwner {
        uint256[2] memory key = _registeredKey(user);
        address old = auditor;
        auditor = user;
        auditorPublicKey = Point(key[0], key[1]);
        emit AuditorChanged(old, user);
    }

    function isAuditorKeySet() public view returns (bool) {
        return auditor != address(0);
    }

    /// @notice Converter mode: refuses (or again accepts) deposits of `token`.
    function setTokenBlacklist(address token, bool blacklisted) external onlyOwner {
        blacklistedTokens[token] = blacklisted;
    }

    function getTokens() external view returns (address[] memory) {
        return tokens;
    }

    // ---------------------------------------------------------------- converter mode

    /// @notice Wraps `amount` of `tokenAddress` into msg.sender's encrypted balance.
    /// @param amountPCT the depositor's PCT of the credited eERC amount (not verified: the amount is public).
    function deposit(uint256 amount, address tokenAddress, uint256[7] calldata amountPCT) external {
        _deposit(amount, tokenAddress, amountPCT);
    }

    function deposit(uint256 amount, address tokenAddress, uint256[7] calldata amountPCT, bytes calldata message)
        external
    {
        _deposit(amount, tokenAddress, amountPCT);
        _emitMetadata(msg.sender, "DEPOSIT", message);
    }

    /// @notice Unwraps the proven ValueToWithdraw (eERC units) back to the ERC-20.
    function withdraw(uint256 tokenId, WithdrawProof calldata proof, uint256[7] calldata balancePCT) external {
        _withdraw(tokenId, proof, balancePCT);
    }

    function withdraw(
        uint256 tokenId,
        WithdrawProof calldata proof,
        uint256[7] calldata balancePCT,
        bytes calldata message
    ) external {
        _withdraw(tokenId, proof, balancePCT);
        _emitMetadata(msg.sender, "WITHDRAW", message);
    }

    // ---------------------------------------------------------------- both modes

    function transfer(address to, uint256 tokenId, TransferProof calldata proof, uint256[7] calldata balancePCT)
        external
    {
        _transfer(to, tokenId, proof, balancePCT);
    }

    function transfer(
        address to,
        uint256 tokenId,
        TransferProof calldata proof,
        uint256[7] calldata balancePCT,
        bytes calldata message
    ) external {
        _transfer(to, tokenId, proof, balancePCT);
        _emitMetadata(to, "PRIVATE_TRANSFER", message);
    }

    /// @notice Emits an encrypted note from msg.sender to `to`; both must be registered.
    function sendEncryptedMetadata(address to, bytes calldata message) external {
        _registeredKey(msg.sender);
        _registeredKey(to);
        emit PrivateMessage(msg.sender, to, Metadata(msg.sender, to, "MESSAGE", message));
    }

    // ---------------------------------------------------------------- standalone mode

    function privateMint(address user, MintProof calldata proof) external onlyOwner {
        _privateMint(user, proof);
    }

    function privateMint(address user, MintProof calldata proof, bytes calldata message) external onlyOwner {
        _privateMint(user, proof);
        _emitMetadata(user, "PRIVATE_MINT", message);
    }

    function privateBurn(BurnProof calldata proof, uint256[7] calldata balancePCT) external {
        _privateBurn(proof, balancePCT);
    }

    /// @dev As in the audited contract, `user` must be registered and the burn is msg.sender's.
    function privateBurn(address user, BurnProof calldata proof, uint256[7] calldata balancePCT, bytes calldata message)
        external
    {
        _registeredKey(user);
        _privateBurn(proof, balancePCT);
        _emitMetadata(msg.sender, "PRIVATE_BURN", message);
    }

    // ---------------------------------------------------------------- views

    /// @notice The user's encrypted balance. An account never credited has an all-zero EGCT.
    /// @return eGCT the balance ciphertext
    /// @return nonce spends so far; snapshots are valid only at the current nonce
    /// @return amountPCTs PCTs of the credits not yet folded into balancePCT, with their transaction indexes
    /// @return balancePCT PCT stored by the last spend
    /// @return transactionIndex the next transaction index (credits take one, deposits two, spends one)
    function balanceOf(address user, uint256 tokenId)
        public
        view
        returns (
            EGCT memory eGCT,
            uint256 nonce,
            AmountPCT[] memory amountPCTs,
            uint256[7] memory balancePCT,
            uint256 transactionIndex
        )
    {
        EncryptedBalance storage bal = _balances[user][tokenId];
        uint256 start = bal.pctStart;
        amountPCTs = new AmountPCT[](bal.pctEnd - start);
        for (uint256 i; i < amountPCTs.length; ++i) {
            amountPCTs[i] = bal.pcts[start + i];
        }
        return (bal.eGCT, bal.nonce, amountPCTs, bal.balancePCT, bal.transactionIndex);
    }

    function balanceOfStandalone(address user)
        external
        view
        returns (
            EGCT memory eGCT,
            uint256 nonce,
            AmountPCT[] memory amountPCTs,
            uint256[7] memory balancePCT,
            uint256 transactionIndex
        )
    {
        return balanceOf(user, 0);
    }

    function getBalanceFromTokenAddress(address user, address tokenAddress)
        external
        view
        returns (
            EGCT memory eGCT,
            uint256 nonce,
            AmountPCT[] memory amountPCTs,
            uint256[7] memory balancePCT,
            uint256 transactionIndex
        )
    {
        return balanceOf(user, tokenIds[tokenAddress]);
    }

    /// @notice The scalar part of a balance, as the audited contract's public `balances` getter returns it.
    function balances(address user, uint256 tokenId)
        external
        view
        returns (EGCT memory eGCT, uint256 nonce, uint256 transactionIndex)
    {
        EncryptedBalance storage bal = _balances[user][tokenId];
        return (bal.eGCT, bal.nonce, bal.transactionIndex);
    }

    // ---------------------------------------------------------------- paged balance reads
    // Additions to the audited interface: `balanceOf` returns every pending amount PCT, so its
    // cost grows with the queue (about 19k gas each) until it no longer fits an eth_call's gas cap.
    // These two read the same balance in bounded pieces; the SDK uses them where they exist.

    /// @notice Everything `balanceOf` returns except the pending amount PCTs, and how many there are
    /// (`pendingCount`; `pendingPCTs` pages them).
    function balanceHeader(address user, uint256 tokenId)
        external
        view
        returns (
            EGCT memory eGCT,
            uint256 nonce,
            uint256[7] memory balancePCT,
            uint256 transactionIndex,
            uint256 pendingCount
        )
    {
        EncryptedBalance storage bal = _balances[user][tokenId];
        return (bal.eGCT, bal.nonce, bal.balancePCT, bal.transactionIndex, bal.pctEnd - bal.pctStart);
    }

    /// @notice Pending amount PCTs `offset .. offset + limit` (clamped to the queue), in `balanceOf`'s order.
    function pendingPCTs(address user, uint256 tokenId, uint256 offset, uint256 limit)
        external
        view
        returns (AmountPCT[] memory page)
    {
        EncryptedBalance storage bal = _balances[user][tokenId];
        uint256 count = bal.pctEnd - bal.pctStart;
        if (offset >= count) return new AmountPCT[](0);
        uint256 n = count - offset < limit ? count - offset : limit;
        page = new AmountPCT[](n);
        uint256 first = bal.pctStart + offset;
        for (uint256 i; i < n; ++i) {
            page[i] = bal.pcts[first + i];
        }
    }

    // ---------------------------------------------------------------- implementation

    function _deposit(uint256 amount, address token, uint256[7] calldata amountPCT) private nonReentrant {
        if (!isConverter) revert ConverterOnly();
        _requireAuditor();
        if (blacklistedTokens[token]) revert TokenBlacklisted(token);
        uint256[2] memory key = _registeredKey(msg.sender);
        (uint256 tokenId, uint8 tokenDecimals) = _tokenIdFor(token);

        uint256 value;
        uint256 dust;
        if (tokenDecimals > decimals) {
            uint256 factor = 10 ** (tokenDecimals - decimals);
            (value, dust) = (amount / factor, amount % factor);
        } else {
            uint256 factor = 10 ** (decimals - tokenDecimals);
            if (amount > type(uint256).max / factor) revert AmountTooLarge();
            value = amount * factor;
        }
        if (value == 0) revert ZeroAmount();
        if (value >= BabyJubJub.L) revert AmountTooLarge();

        EncryptedBalance storage bal = _balances[msg.sender][tokenId];
        _addEGCT(bal, _encryptWithRandomOne(key, value));
        uint64 txIndex = bal.transactionIndex;
        _pushPCT(bal, amountPCT, txIndex);
        _recordSnapshot(bal, txIndex + 1);
        bal.transactionIndex = txIndex + 2;

        // Only the whole-unit part is pulled: the dust never leaves the sender.
        uint256 pulled = amount - dust;
        IERC20 erc20 = IERC20(token);
        uint256 before = erc20.balanceOf(address(this));
        erc20.safeTransferFrom(msg.sender, address(this), pulled);
        uint256 received = erc20.balanceOf(address(this)) - before;
        if (received != pulled) revert TransferAmountMismatch(pulled, received);

        emit Deposit(msg.sender, amount, dust, tokenId);
    }

    function _withdraw(uint256 tokenId, WithdrawProof calldata proof, uint256[7] calldata balancePCT)
        private
        nonReentrant
    {
        if (!isConverter) revert ConverterOnly();
        uint256[16] calldata s = proof.publicSignals;
        _requireAuditor();
        address token = _requireToken(tokenId);
        uint256[2] memory key = _registeredKey(msg.sender);
        if (s[1] != key[0] || s[2] != key[1]) revert InvalidSenderPublicKey();
        _requireAuditorKey(s[7], s[8]);
        for (uint256 i; i < 16; ++i) {
            if (s[i] >= BabyJubJub.P) revert InvalidPublicSignal();
        }
        uint256 value = s[0];
        if (value >= BabyJubJub.L) revert AmountTooLarge();
        uint256 tokenAmount = _toTokenUnits(value, _tokenDecimals[tokenId]);

        EncryptedBalance storage bal = _balances[msg.sender][tokenId];
        uint256 snapshot = _snapshotIndex(bal, s[3], s[4], s[5], s[6]);
        if (!withdrawVerifier.verifyProof(proof.proofPoints.a, proof.proofPoints.b, proof.proofPoints.c, s)) {
            revert InvalidProof();
        }

        _spend(bal, snapshot, _encryptWithRandomOne(key, value), balancePCT);

        if (tokenAmount != 0) IERC20(token).safeTransfer(msg.sender, tokenAmount);
        emit Withdraw(msg.sender, value, tokenId, [s[9], s[10], s[11], s[12], s[13], s[14], s[15]], auditor);
    }

    function _transfer(address to, uint256 tokenId, TransferProof calldata proof, uint256[7] calldata balancePCT)
        private
    {
        uint256[32] calldata s = proof.publicSignals;
        _requireAuditor();
        _requireToken(tokenId);
        uint256[2] memory senderKey = _registeredKey(msg.sender);
        uint256[2] memory receiverKey = _registeredKey(to);
        if (s[0] != senderKey[0] || s[1] != senderKey[1]) revert InvalidSenderPublicKey();
        if (s[10] != receiverKey[0] || s[11] != receiverKey[1]) revert InvalidReceiverPublicKey();
        _requireAuditorKey(s[23], s[24]);
        for (uint256 i; i < 32; ++i) {
            if (s[i] >= BabyJubJub.P) revert InvalidPublicSignal();
        }

        EncryptedBalance storage from = _balances[msg.sender][tokenId];
        uint256 snapshot = _snapshotIndex(from, s[2], s[3], s[4], s[5]);
        if (!transferVerifier.verifyProof(proof.proofPoints.a, proof.proofPoints.b, proof.proofPoints.c, s)) {
            revert InvalidProof();
        }

        _spend(from, snapshot, EGCT(Point(s[6], s[7]), Point(s[8], s[9])), balancePCT);
        _credit(
            _balances[to][tokenId],
            EGCT(Point(s[12], s[13]), Point(s[14], s[15])),
            [s[16], s[17], s[18], s[19], s[20], s[21], s[22]]
        );

        emit PrivateTransfer(msg.sender, to, [s[25], s[26], s[27], s[28], s[29], s[30], s[31]], auditor);
    }

    function _privateMint(address user, MintProof calldata proof) private {
        if (isConverter) revert StandaloneOnly();
        uint256[24] calldata s = proof.publicSignals;
        _requireAuditor();
        uint256[2] memory key = _registeredKey(user);
        if (s[0] != block.chainid) revert InvalidChainId();
        if (s[1] >= BabyJubJub.P) revert InvalidNullifier();
        if (alreadyMinted[s[1]]) revert NullifierAlreadyUsed();
        if (s[2] != key[0] || s[3] != key[1]) revert InvalidReceiverPublicKey();
        _requireAuditorKey(s[15], s[16]);
        for (uint256 i; i < 24; ++i) {
            if (s[i] >= BabyJubJub.P) revert InvalidPublicSignal();
        }
        if (!mintVerifier.verifyProof(proof.proofPoints.a, proof.proofPoints.b, proof.proofPoints.c, s)) {
            revert InvalidProof();
        }

        alreadyMinted[s[1]] = true;
        _credit(_balances[user][0], EGCT(Point(s[4], s[5]), Point(s[6], s[7])), [s[8], s[9], s[10], s[11], s[12], s[13], s[14]]);

        emit PrivateMint(user, [s[17], s[18], s[19], s[20], s[21], s[22], s[23]], auditor);
    }

    function _privateBurn(BurnProof calldata proof, uint256[7] calldata balancePCT) private {
        if (isConverter) revert StandaloneOnly();
        uint256[19] calldata s = proof.publicSignals;
        _requireAuditor();
        uint256[2] memory key = _registeredKey(msg.sender);
        if (s[0] != key[0] || s[1] != key[1]) revert InvalidSenderPublicKey();
        _requireAuditorKey(s[10], s[11]);
        for (uint256 i; i < 19; ++i) {
            if (s[i] >= BabyJubJub.P) revert InvalidPublicSignal();
        }

        EncryptedBalance storage bal = _balances[msg.sender][0];
        uint256 snapshot = _snapshotIndex(bal, s[2], s[3], s[4], s[5]);
        if (!burnVerifier.verifyProof(proof.proofPoints.a, proof.proofPoints.b, proof.proofPoints.c, s)) {
            revert InvalidProof();
        }

        _spend(bal, snapshot, EGCT(Point(s[6], s[7]), Point(s[8], s[9])), balancePCT);

        emit PrivateBurn(msg.sender, [s[12], s[13], s[14], s[15], s[16], s[17], s[18]], auditor);
    }

    /// @dev A credit: its snapshot and its PCT share one transaction index.
    function _credit(EncryptedBalance storage bal, EGCT memory e, uint256[7] memory pct) private {
        _addEGCT(bal, e);
        uint64 txIndex = bal.transactionIndex;
        _recordSnapshot(bal, txIndex);
        _pushPCT(bal, pct, txIndex);
        bal.transactionIndex = txIndex + 1;
    }

    /// @dev Adds `e` to the stored EGCT; a never-credited balance (c1 = (0, 0)) takes `e` as it is.
    function _addEGCT(EncryptedBalance storage bal, EGCT memory e) private {
        EGCT memory cur = bal.eGCT;
        bal.eGCT = cur.c1.x == 0 && cur.c1.y == 0 ? e : BabyJubJub.addEGCT(cur, e);
    }

    /// @dev Every credit and deposit appends its amount PCT here. Virtual so that a variant can cap
    /// the pending queue (`EncryptedERCCapped`); this contract, like the audited main, has no cap.
    function _pushPCT(EncryptedBalance storage bal, uint256[7] memory pct, uint64 txIndex) internal virtual {
        uint64 end = bal.pctEnd;
        AmountPCT storage slot = bal.pcts[end];
        slot.pct = pct;
        slot.index = txIndex;
        bal.pctEnd = end + 1;
    }

    /// @dev Records the stored EGCT as valid at the current nonce, with transaction index `txIndex`.
    function _recordSnapshot(EncryptedBalance storage bal, uint64 txIndex) private {
        bal.snapshots[_snapshotKey(bal.eGCT, bal.nonce)] = uint256(txIndex) + 1;
    }

    /// @dev Applies a spend of `e` proven against the snapshot recorded at transaction index `snapshot - 1`.
    function _spend(EncryptedBalance storage bal, uint256 snapshot, EGCT memory e, uint256[7] calldata balancePCT)
        private
    {
        // Credits up to the snapshot are covered by the new balancePCT; positions hold increasing
        // indices, so binary-search the first PCT credited after the snapshot.
        uint64 lo = bal.pctStart;
        uint64 hi = bal.pctEnd;
        uint64 end = hi;
        while (lo < hi) {
            uint64 mid = (lo + hi) / 2;
            if (bal.pcts[mid].index < snapshot) lo = mid + 1;
            else hi = mid;
        }
        if (lo == end) {
            bal.pctStart = 0;
            bal.pctEnd = 0;
        } else {
            bal.pctStart = lo;
        }

        bal.eGCT = BabyJubJub.subEGCT(bal.eGCT, e);
        bal.balancePCT = balancePCT;
        bal.nonce += 1;
        uint64 txIndex = bal.transactionIndex;
        _recordSnapshot(bal, txIndex);
        bal.transactionIndex = txIndex + 1;
    }

    /// @return The recorded transaction index plus one of the snapshot (c1, c2) at the current nonce.
    function _snapshotIndex(EncryptedBalance storage bal, uint256 c1x, uint256 c1y, uint256 c2x, uint256 c2y)
        private
        view
        returns (uint256)
    {
        uint256 index = bal.snapshots[_snapshotKey(EGCT(Point(c1x, c1y), Point(c2x, c2y)), bal.nonce)];
        if (index == 0) revert InvalidBalanceSnapshot();
        return index;
    }

    function _snapshotKey(EGCT memory e, uint256 nonce) private pure returns (bytes32) {
        return keccak256(abi.encode(keccak256(abi.encode(e)), nonce));
    }

    /// @dev ElGamal encryption of a public amount with randomness 1: (Base8, PK + value·Base8).
    function _encryptWithRandomOne(uint256[2] memory key, uint256 value) private view returns (EGCT memory) {
        Point memory b8 = BabyJubJub.base8();
        return EGCT(b8, BabyJubJub.add(Point(key[0], key[1]), BabyJubJub.scalarMul(b8, value)));
    }

    function _registeredKey(address user) private view returns (uint256[2] memory key) {
        key = registrar.getUserPublicKey(user);
        if (key[0] == 0 && key[1] == 0) revert UserNotRegistered(user);
    }

    function _requireAuditor() private view {
        if (auditor == address(0)) revert AuditorNotSet();
    }

    function _requireAuditorKey(uint256 x, uint256 y) private view {
        if (x != auditorPublicKey.x || y != auditorPublicKey.y) revert InvalidAuditorPublicKey();
    }

    /// @return token the wrapped ERC-20 (zero in standalone mode)
    function _requireToken(uint256 tokenId) private view returns (address token) {
        if (isConverter) {
            token = tokenAddresses[tokenId];
            if (token == address(0)) revert UnknownToken(tokenId);
        } else if (tokenId != 0) {
            revert UnknownToken(tokenId);
        }
    }

    /// @dev Returns the token's id, assigning the next one (and caching its decimals) on first use.
    function _tokenIdFor(address token) private returns (uint256 tokenId, uint8 tokenDecimals) {
        tokenId = tokenIds[token];
        if (tokenId != 0) return (tokenId, _tokenDecimals[tokenId]);
        if (token.code.length == 0) revert InvalidToken(token);

        (bool ok, bytes memory ret) = token.staticcall(abi.encodeCall(IERC20Metadata.decimals, ()));
        if (!ok || ret.length < 32) revert TokenDecimalsUnavailable(token);
        uint256 d = abi.decode(ret, (uint256));
        // 10**77 is the largest power of ten below 2**256.
        uint256 diff = d > decimals ? d - decimals : decimals - d;
        if (d > type(uint8).max || diff > 77) revert UnsupportedTokenDecimals(token, d);

        tokenId = nextTokenId++;
        tokenDecimals = uint8(d);
        tokenIds[token] = tokenId;
        tokenAddresses[tokenId] = token;
        tokens.push(token);
        _tokenDecimals[tokenId] = tokenDecimals;
    }

    function _toTokenUnits(uint256 value, uint8 tokenDecimals) private view returns (uint256) {
        if (tokenDecimals >= decimals) {
            uint256 factor = 10 ** (tokenDecimals - decimals);
            if (value > type(uint256).max / factor) revert AmountTooLarge();
            return value * factor;
        }
        uint256 divisor = 10 ** (decimals - tokenDecimals);
        if (value % divisor != 0) revert AmountNotRepresentable(value);
        return value / divisor;
    }

    /// @dev As the audited contract: a message goes out only when one was given.
    function _emitMetadata(address to, string memory messageType, bytes calldata message) private {
        if (message.length == 0) return;
        emit PrivateMessage(msg.sender, to, Metadata(msg.sender, to, messageType, message));
    }
}
