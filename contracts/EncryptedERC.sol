// SPDX-License-Identifier: MIT
pragma solidity ^0.8.27;

import {Ownable} from "@openzeppelin/contracts/access/Ownable.sol";
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
/// Balance model: every credit adds its EGCT homomorphically, appends its amount PCT and records
/// keccak256(abi.encode(keccak256(abi.encode(EGCT)), nonce)) as a valid snapshot. A spend proves
/// against any snapshot valid at the current nonce; the sender's value is subtracted from the
/// current EGCT, amount PCTs credited up to that snapshot are dropped (the caller's new balancePCT
/// covers them), the nonce is incremented and the resulting EGCT becomes the one valid snapshot.
contract EncryptedERC is Ownable, ReentrancyGuardTransient {
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
    bool public immutable isConverter;
    uint8 public immutable decimals;
    string public name;
    string public symbol;

    IMintVerifier private immutable _mintVerifier;
    IWithdrawVerifier private immutable _withdrawVerifier;
    ITransferVerifier private immutable _transferVerifier;
    IBurnVerifier private immutable _burnVerifier;

    address public auditor;
    Point public auditorPublicKey;

    mapping(address token => uint256 tokenId) public tokenIds;
    mapping(uint256 tokenId => address token) public tokenAddresses;
    mapping(uint256 tokenId => uint8) private _tokenDecimals;
    uint256 private _tokenCount;

    mapping(uint256 nullifierHash => bool) private _usedNullifiers;
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
        name = params.name;
        symbol = params.symbol;
        decimals = params.decimals;
        _mintVerifier = IMintVerifier(params.mintVerifier);
        _withdrawVerifier = IWithdrawVerifier(params.withdrawVerifier);
        _transferVerifier = ITransferVerifier(params.transferVerifier);
        _burnVerifier = IBurnVerifier(params.burnVerifier);
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
        _emitMessage(msg.sender, "DEPOSIT", message);
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
        _emitMessage(msg.sender, "WITHDRAW", message);
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
        _emitMessage(to, "TRANSFER", message);
    }

    /// @notice Emits an encrypted note from msg.sender to `to`; both must be registered.
    function sendEncryptedMetadata(address to, bytes calldata message) external {
        _registeredKey(msg.sender);
        _registeredKey(to);
        _emitMessage(to, "METADATA", message);
    }

    // ---------------------------------------------------------------- standalone mode

    function privateMint(address user, MintProof calldata proof) external onlyOwner {
        _privateMint(user, proof);
    }

    function privateMint(address user, MintProof calldata proof, bytes calldata message) external onlyOwner {
        _privateMint(user, proof);
        _emitMessage(user, "MINT", message);
    }

    function privateBurn(BurnProof calldata proof, uint256[7] calldata balancePCT) external {
        _privateBurn(proof, balancePCT);
    }

    function privateBurn(BurnProof calldata proof, uint256[7] calldata balancePCT, bytes calldata message)
        external
    {
        _privateBurn(proof, balancePCT);
        _emitMessage(msg.sender, "BURN", message);
    }

    // ---------------------------------------------------------------- views

    /// @notice The user's encrypted balance. An account never credited has an all-zero EGCT.
    /// @return eGCT the balance ciphertext
    /// @return nonce spends so far; snapshots are valid only at the current nonce
    /// @return amountPCTs PCTs of the credits not yet folded into balancePCT
    /// @return balancePCT PCT stored by the last spend
    /// @return transactionIndex credits and spends so far
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

    function getBalanceFromTokenAddress(address user, address token)
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
        return balanceOf(user, tokenIds[token]);
    }

    // ---------------------------------------------------------------- implementation

    function _deposit(uint256 amount, address token, uint256[7] calldata amountPCT) private nonReentrant {
        if (!isConverter) revert ConverterOnly();
        _requireAuditor();
        _registeredKey(msg.sender);
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
        EGCT memory e = _currentEGCT(bal);
        e.c2 = BabyJubJub.add(e.c2, BabyJubJub.scalarMul(BabyJubJub.base8(), value));
        _credit(bal, e, amountPCT);

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
        uint256 tokens = _toTokenUnits(value, _tokenDecimals[tokenId]);

        EncryptedBalance storage bal = _balances[msg.sender][tokenId];
        uint256 snapshot = _snapshotIndex(bal, s[3], s[4], s[5], s[6]);
        if (!_withdrawVerifier.verifyProof(proof.proofPoints.a, proof.proofPoints.b, proof.proofPoints.c, s)) {
            revert InvalidProof();
        }

        EGCT memory e = _currentEGCT(bal);
        e.c2 = BabyJubJub.sub(e.c2, BabyJubJub.scalarMul(BabyJubJub.base8(), value));
        _spend(bal, snapshot, e, balancePCT);

        if (tokens != 0) IERC20(token).safeTransfer(msg.sender, tokens);
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
        if (!_transferVerifier.verifyProof(proof.proofPoints.a, proof.proofPoints.b, proof.proofPoints.c, s)) {
            revert InvalidProof();
        }

        EGCT memory senderVTT = EGCT(Point(s[6], s[7]), Point(s[8], s[9]));
        _spend(from, snapshot, BabyJubJub.subEGCT(_currentEGCT(from), senderVTT), balancePCT);

        EncryptedBalance storage rcv = _balances[to][tokenId];
        EGCT memory receiverVTT = EGCT(Point(s[12], s[13]), Point(s[14], s[15]));
        _credit(
            rcv,
            BabyJubJub.addEGCT(_currentEGCT(rcv), receiverVTT),
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
        if (_usedNullifiers[s[1]]) revert NullifierAlreadyUsed();
        if (s[2] != key[0] || s[3] != key[1]) revert InvalidReceiverPublicKey();
        _requireAuditorKey(s[15], s[16]);
        for (uint256 i; i < 24; ++i) {
            if (s[i] >= BabyJubJub.P) revert InvalidPublicSignal();
        }
        if (!_mintVerifier.verifyProof(proof.proofPoints.a, proof.proofPoints.b, proof.proofPoints.c, s)) {
            revert InvalidProof();
        }

        _usedNullifiers[s[1]] = true;
        EncryptedBalance storage bal = _balances[user][0];
        EGCT memory vtt = EGCT(Point(s[4], s[5]), Point(s[6], s[7]));
        _credit(bal, BabyJubJub.addEGCT(_currentEGCT(bal), vtt), [s[8], s[9], s[10], s[11], s[12], s[13], s[14]]);

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
        if (!_burnVerifier.verifyProof(proof.proofPoints.a, proof.proofPoints.b, proof.proofPoints.c, s)) {
            revert InvalidProof();
        }

        EGCT memory vtb = EGCT(Point(s[6], s[7]), Point(s[8], s[9]));
        _spend(bal, snapshot, BabyJubJub.subEGCT(_currentEGCT(bal), vtb), balancePCT);

        emit PrivateBurn(msg.sender, [s[12], s[13], s[14], s[15], s[16], s[17], s[18]], auditor);
    }

    /// @dev Stores a credited EGCT, appends its PCT and records it as a snapshot at the current nonce.
    function _credit(EncryptedBalance storage bal, EGCT memory e, uint256[7] memory pct) private {
        uint64 txIndex = bal.transactionIndex;
        uint64 end = bal.pctEnd;
        AmountPCT storage slot = bal.pcts[end];
        slot.pct = pct;
        slot.index = txIndex;
        bal.eGCT = e;
        bal.pctEnd = end + 1;
        bal.transactionIndex = txIndex + 1;
        bal.snapshots[_snapshotKey(e, bal.nonce)] = uint256(txIndex) + 1;
    }

    /// @dev Applies a spend proven against the snapshot recorded at transaction index `snapshot - 1`.
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

        uint64 nonce = bal.nonce + 1;
        uint64 txIndex = bal.transactionIndex;
        bal.eGCT = e;
        bal.balancePCT = balancePCT;
        bal.nonce = nonce;
        bal.transactionIndex = txIndex + 1;
        bal.snapshots[_snapshotKey(e, nonce)] = uint256(txIndex) + 1;
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

    /// @dev An account never credited stores (0,0),(0,0), which is not a curve point: read it as Enc(0).
    function _currentEGCT(EncryptedBalance storage bal) private view returns (EGCT memory e) {
        e = bal.eGCT;
        if (e.c1.x == 0 && e.c1.y == 0 && e.c2.x == 0 && e.c2.y == 0) {
            e = EGCT(BabyJubJub.identity(), BabyJubJub.identity());
        }
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

        tokenId = ++_tokenCount;
        tokenDecimals = uint8(d);
        tokenIds[token] = tokenId;
        tokenAddresses[tokenId] = token;
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

    function _emitMessage(address to, string memory messageType, bytes calldata message) private {
        emit PrivateMessage(msg.sender, to, Metadata(msg.sender, to, messageType, message));
    }
}
